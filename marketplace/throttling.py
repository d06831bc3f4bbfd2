"""Fixed-window rate limits kept in the cache, reported in the RateLimit header fields.

ninja's own throttles read a history list, change it and write it back, so two
requests racing each other can both pass. Here the counter is a single atomic
`incr` (Redis INCR in production), so a burst of parallel attempts is counted
exactly.

Every response of a throttled operation says where the caller stands, in the
fields of draft-ietf-httpapi-ratelimit-headers (the three-field form):
`RateLimit-Limit` (requests per window), `RateLimit-Remaining` and `RateLimit-Reset`
(whole seconds until the window ends). A 429's `Retry-After` is that same number of
seconds (RFC 9110 §10.2.3), not the window's full length.
"""

import hashlib
import json
import logging
import math
import time
import unicodedata
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from django.core.cache import cache
from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin
from ninja.throttling import BaseThrottle

from marketplace.errors import RateLimitUnavailable
from marketplace.proxies import client_address
from marketplace.resilience import is_outage

logger = logging.getLogger(__name__)

Key = Literal["address", "email", "user"]

# The request attribute where each throttle that counted the request leaves its Quota.
_QUOTAS = "rate_limit_quotas"

# ninja asks a refusing throttle `wait()` right after `allow_request()`, without the request. The
# throttle object is shared by every request to its operation (threads, tasks), so the answer is
# kept per context, not on the object.
_seconds_left: ContextVar[float | None] = ContextVar("ratelimit_seconds_left", default=None)


def parse_rate(rate: str) -> tuple[int, int]:
    """`"10/60"` means ten requests per sixty seconds."""
    count, _, seconds = rate.partition("/")
    return int(count), int(seconds)


@dataclass(frozen=True)
class Quota:
    """Where one caller stands in one limit: `limit` requests per window, `remaining` of them left
    (0 once over), `reset` whole seconds until the window ends (1 to the window's length)."""

    limit: int
    remaining: int
    reset: int


def window_of(cache_key: str, window: int, now: float) -> tuple[int, float]:
    """The fixed window `now` (Unix seconds) falls in for this key: (its number, seconds until it ends).

    Windows are `window` seconds long and the number goes in the counter's key, so the
    end of a window is known without reading a TTL, and a new window is a new key. Each
    key's windows are shifted by an offset taken from the key's hash, so the limits of
    different callers do not all end at the same second.
    """
    offset = int.from_bytes(hashlib.sha256(cache_key.encode()).digest()[:4]) % window
    number = math.floor((now - offset) / window)
    ends_at = offset + (number + 1) * window
    return number, ends_at - now


class FixedWindowThrottle(BaseThrottle):
    """A fixed-window limit of RATE (`"count/seconds"`) per address, email or user.

    When the cache cannot be reached, a limit that protects accounts (login, tokens)
    refuses with 503 `rate_limit_unavailable` (`fail_open=False`, the default): an
    outage must not open a window for guessing passwords. A limit that only paces
    ordinary use (`fail_open=True`, chat) lets the request through and logs it, so
    an outage of Redis does not take the feature down with it. Either way the
    response then has no RateLimit fields: nothing was counted.
    """

    def __init__(self, scope: str, rate_setting: str, *, key: Key = "address", fail_open: bool = False) -> None:
        self.scope = scope
        self.rate_setting = rate_setting
        self.key = key
        self.fail_open = fail_open

    def _ident(self, request: HttpRequest) -> str | None:
        if self.key == "address":
            return client_address(request)
        if self.key == "user":
            user = getattr(request, "auth", None)
            return str(user.pk) if user is not None else client_address(request)
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            # A web page's form (web/): the login form calls the email "username".
            email = request.POST.get("email") or request.POST.get("username")
        else:
            try:
                email = json.loads(request.body or b"{}").get("email")
            except (ValueError, AttributeError):
                return None
        if not isinstance(email, str) or not email.strip():
            return None
        # The account's canonical form (marketplace.schemas.canonical_email), hashed: any text, even one
        # with NUL or a lone surrogate that validation will refuse next, makes a safe, stable cache key.
        canonical = unicodedata.normalize("NFKC", email).strip().lower()
        return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()

    def allow_request(self, request: HttpRequest) -> bool:
        from django.conf import settings

        limit, window = parse_rate(getattr(settings, self.rate_setting))
        ident = self._ident(request)
        if ident is None:
            return True
        cache_key = f"ratelimit:{self.scope}:{self.key}:{ident}"
        number, seconds_left = window_of(cache_key, window, time.time())
        try:
            hits = self._hit(f"{cache_key}:{number}", window)
        except Exception as exc:
            if not is_outage(exc):
                raise
            logger.warning("ratelimit.cache_unavailable", extra={"scope": self.scope, "error": repr(exc)})
            if self.fail_open:
                return True
            raise RateLimitUnavailable() from exc
        quota = Quota(limit=limit, remaining=max(0, limit - hits), reset=max(1, math.ceil(seconds_left)))
        setattr(request, _QUOTAS, [*getattr(request, _QUOTAS, []), quota])
        _seconds_left.set(quota.reset)
        return hits <= limit

    @staticmethod
    def _hit(window_key: str, window: int) -> int:
        # add() only sets a missing key, so the first hit of a window creates its counter; the key
        # outlives its window (at most `window` seconds after it ends), and nothing reads it then.
        cache.add(window_key, 0, timeout=window)
        try:
            return int(cache.incr(window_key))
        except ValueError:
            # The key was evicted between add() and incr(): count this hit in a new counter.
            cache.add(window_key, 1, timeout=window)
            return 1

    def wait(self) -> float | None:
        return _seconds_left.get()


def tightest(quotas: list[Quota]) -> Quota:
    """The quota to report when several limits counted a request: the fewest requests left,
    then the longest wait (so a 429's fields agree with its Retry-After)."""
    return min(quotas, key=lambda quota: (quota.remaining, -quota.reset))


class RateLimitHeadersMiddleware(MiddlewareMixin):
    """Adds `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` to the response of any
    request a FixedWindowThrottle counted (draft-ietf-httpapi-ratelimit-headers), 429s included.

    Above ApiConditionalGetMiddleware in MIDDLEWARE, so a 304 carries them too.
    """

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        quotas: list[Quota] = getattr(request, _QUOTAS, [])
        if quotas:
            quota = tightest(quotas)
            response["RateLimit-Limit"] = str(quota.limit)
            response["RateLimit-Remaining"] = str(quota.remaining)
            response["RateLimit-Reset"] = str(quota.reset)
            if response.status_code == 429:
                # Every limit with nothing left must have reset before a retry can pass: wait for the last.
                response["Retry-After"] = str(
                    max(q.reset for q in quotas if q.remaining == 0)
                    if any(q.remaining == 0 for q in quotas)
                    else quota.reset
                )
        return response


class TokenBucket:
    """Per-connection rate limit: `rate` tokens a second, at most `burst` saved up.

    Lives in one consumer's memory, so it needs no lock and no round trip.
    """

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
