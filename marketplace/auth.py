"""How API callers prove who they are: an API token or a browser session.

Programs send `Authorization: Bearer vt_...`. Browsers send the session cookie
and, on unsafe methods, the CSRF token in `X-CSRFToken`; a session request that
fails the CSRF check is refused rather than treated as anonymous.
"""

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie
from ninja.utils import check_csrf

from accounts.models import User
from accounts.services import api_token_authenticate
from marketplace.errors import CsrfFailed, Forbidden


class TokenAuth(HttpBearer):
    """`with_profiles=True` reads the user's profiles in the token's own statement, for an endpoint that
    shows them (`GET /api/me`); every other endpoint reads the token and the user alone."""

    def __init__(self, *, with_profiles: bool = False) -> None:
        super().__init__()
        self.with_profiles = with_profiles

    def __call__(self, request: HttpRequest) -> User | None:
        """`Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110 §11.1).

        Any other value is no credential. ninja's own parsing logs such a header whole under
        DEBUG, and a mistyped header is often a token: nothing here logs it.
        """
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = api_token_authenticate(token, with_profiles=self.with_profiles)
        if user is not None:
            request.user = user
        return user


class SessionAuth(APIKeyCookie):
    param_name = "sessionid"

    def _get_key(self, request: HttpRequest) -> str | None:
        from django.conf import settings

        return request.COOKIES.get(settings.SESSION_COOKIE_NAME)

    def __call__(self, request: HttpRequest) -> Any:
        key = self._get_key(request)
        if key is None or not request.user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request) is not None:
            raise CsrfFailed()
        return request.user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return request.user if request.user.is_authenticated else None


def require_csrf(request: HttpRequest) -> None:
    """CSRF for endpoints without authentication that start a session (login, register).

    A program's call carries no cookies and a JSON body: no browser can forge that cross-site
    (a form cannot send `application/json`, and CORS is not enabled), so it needs no token.
    A call that carries any cookie is a browser's, and must send the CSRF token.
    """
    if not request.COOKIES and request.content_type == "application/json":
        return
    if check_csrf(request) is not None:
        raise CsrfFailed()


def current_user(request: HttpRequest) -> User:
    user = request.auth  # type: ignore[attr-defined]
    if not isinstance(user, User):
        raise Forbidden()
    return user


def staff_user(request: HttpRequest) -> User:
    user = current_user(request)
    if not user.is_staff:
        raise Forbidden("Only staff may do this.")
    return user


api_auth = [TokenAuth(), SessionAuth()]
# For `GET /api/me`: the token, the user and both profiles in one statement.
api_auth_with_profiles = [TokenAuth(with_profiles=True), SessionAuth()]

__all__ = [
    "SessionAuth",
    "TokenAuth",
    "api_auth",
    "api_auth_with_profiles",
    "current_user",
    "require_csrf",
    "staff_user",
]
