"""Fixed-window rate limits kept in the cache.

ninja's own throttles read a history list, change it and write it back, so two
requests racing each other can both pass. Here the counter is a single atomic
`incr` (Redis INCR in production), so a burst of parallel attempts is counted
exactly.
"""

import hashlib
import json
import logging
import time
import unicodedata
from collections.abc import Callable
from typing import Literal

from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from marketplace.errors import RateLimitUnavailable
from marketplace.proxies import client_address
from marketplace.resilience import is_outage

logger = logging.getLogger(__name__)

Key = Literal["address", "email", "user"]


def parse_rate(rate: str) -> tuple[int, int]:
    """`"10/60"` means ten requests per sixty seconds."""
    count, _, seconds = rate.partition("/")
    return int(count), int(seconds)


class FixedWindowThrottle(BaseThrottle):
    """A fixed-window limit of RATE (`"count/seconds"`) per address, email or user.

    When the cache cannot be reached, a limit that protects accounts (login, tokens)
    refuses with 503 `rate_limit_unavailable` (`fail_open=False`, the default): an
    outage must not open a window for guessing passwords. A limit that only paces
    ordinary use (`fail_open=True`, chat) lets the request through and logs it, so
    an outage of Redis does not take the feature down with it.
    """

    def __init__(self, scope: str, rate_setting: str, *, key: Key = "address", fail_open: bool = False) -> None:
        self.scope = scope
        self.rate_setting = rate_setting
        self.key = key
        self.fail_open = fail_open
        self._retry_after: float | None = None

    def _ident(self, request: HttpRequest) -> str | None:
        if self.key == "address":
            return client_address(request)
        if self.key == "user":
            user = getattr(request, "auth", None)
            return str(user.pk) if user is not None else client_address(request)
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
        try:
            hits = self._hit(cache_key, window)
        except Exception as exc:
            if not is_outage(exc):
                raise
            logger.warning("ratelimit.cache_unavailable", extra={"scope": self.scope, "error": repr(exc)})
            if self.fail_open:
                return True
            raise RateLimitUnavailable() from exc
        self._retry_after = float(window)
        return hits <= limit

    @staticmethod
    def _hit(cache_key: str, window: int) -> int:
        # add() only sets a missing key, so the window starts at the first hit.
        cache.add(cache_key, 0, timeout=window)
        try:
            return int(cache.incr(cache_key))
        except ValueError:
            # The key expired between add() and incr(): this hit opens a new window.
            cache.add(cache_key, 1, timeout=window)
            return 1

    def wait(self) -> float | None:
        return self._retry_after


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
