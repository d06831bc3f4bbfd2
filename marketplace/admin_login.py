"""The admin login, limited per client address and per account, like the API's login.

Staff can settle money in the admin, so their accounts are the most valuable in
the system. Each failed admin login counts against the client's address and the
account (its canonical email, `marketplace.email_addresses.email_key`), in fixed windows of
RATE_LIMIT_ADMIN_LOGIN (`"5/900"`: five failures per fifteen minutes). Past the
limit a login is refused with 429 before the password is checked, so even the
right password does not get in until the window ends; a success clears the
account's count. The counters are the same atomic cache increments as the API's
(`marketplace.throttling`); when the cache is unreachable the admin login answers
503 rather than opening a window for guessing.

Our own limiter rather than django-axes: the project already has one, shared with the
API, that counts parallel attempts exactly and reads the client address from
`marketplace.proxies`.
"""

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from marketplace.email_addresses import email_key
from marketplace.proxies import client_address
from marketplace.resilience import is_outage
from marketplace.throttling import parse_rate

logger = logging.getLogger(__name__)


def _keys(request: HttpRequest, email: str) -> list[str]:
    account = hashlib.sha256(email_key(email).encode("utf-8", "surrogatepass")).hexdigest()
    return [f"admin-login:address:{client_address(request)}", f"admin-login:account:{account}"]


def _failures(keys: list[str]) -> int:
    counts = cache.get_many(keys)
    return max((int(value) for value in counts.values()), default=0)


def _count_failure(keys: list[str]) -> None:
    _, window = parse_rate(settings.RATE_LIMIT_ADMIN_LOGIN)
    for key in keys:
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:
            cache.add(key, 1, timeout=window)


def _is_admin_login(request: HttpRequest) -> bool:
    return request.method == "POST" and request.path == reverse("admin:login")


class AdminLoginLimitMiddleware:
    """Refuses an admin login POST from an address or for an account that failed too often (429)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_admin_login(request):
            limit, window = parse_rate(settings.RATE_LIMIT_ADMIN_LOGIN)
            try:
                over = _failures(_keys(request, request.POST.get("username", ""))) >= limit
            except Exception as exc:
                if not is_outage(exc):
                    raise
                logger.warning("admin_login.cache_unavailable", extra={"error": repr(exc)})
                return JsonResponse(
                    {"code": "rate_limit_unavailable", "detail": "Logging in is briefly unavailable."}, status=503
                )
            if over:
                logger.warning("admin_login.locked", extra={"address": client_address(request)})
                response = HttpResponse(
                    "Too many failed logins from this address or for this account. Try again later.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(window)
                return response
        answered: HttpResponse = self.get_response(request)
        return answered


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if request is not None and _is_admin_login(request):
        _count_failure(_keys(request, str(credentials.get("username") or "")))


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and _is_admin_login(request):
        cache.delete(_keys(request, user.email)[1])  # the account's count; the address's stays


def connect() -> None:
    user_login_failed.connect(on_login_failed, dispatch_uid="admin_login.failed")
    user_logged_in.connect(on_logged_in, dispatch_uid="admin_login.succeeded")
