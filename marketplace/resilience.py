"""Calling things that fail: timeouts are the caller's, retries are bounded and jittered, a breaker stops the bleeding.

Used for every call to Stripe. Retries are only safe for calls that carry an
idempotency key (Stripe then returns the first result instead of acting twice),
which is why `retrying` takes the operation, not its arguments.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


class CircuitOpen(Exception):
    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"{name} is unavailable; retry in {retry_after:.0f}s")
        self.name = name
        self.retry_after = retry_after


@dataclass
class CircuitBreaker:
    """Closed: calls go through. After `failure_threshold` failures in a row it opens: calls fail at once.

    After `reset_after` seconds one trial call is let through (half-open): success
    closes the circuit, failure opens it again for another `reset_after`.
    """

    name: str
    failure_threshold: int = 5
    reset_after: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _trial_running: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_after else "open"

    def call[T](self, operation: Callable[[], T], *, counts_as_failure: Callable[[Exception], bool]) -> T:
        with self._lock:
            state = self.state
            if state == "open" or (state == "half_open" and self._trial_running):
                assert self.opened_at is not None  # noqa: S101 - set whenever not closed
                raise CircuitOpen(self.name, max(1.0, self.reset_after - (self.clock() - self.opened_at)))
            if state == "half_open":
                self._trial_running = True
        try:
            result = operation()
        except Exception as exc:
            with self._lock:
                self._trial_running = False
                if counts_as_failure(exc):
                    self.failures += 1
                    if state == "half_open" or self.failures >= self.failure_threshold:
                        self.opened_at = self.clock()
                        logger.warning("circuit.opened", extra={"circuit": self.name, "failures": self.failures})
            raise
        with self._lock:
            if self.opened_at is not None:
                logger.info("circuit.closed", extra={"circuit": self.name})
            self.failures, self.opened_at, self._trial_running = 0, None, False
        return result


def retrying[T](
    operation: Callable[[], T],
    *,
    attempts: int,
    is_retryable: Callable[[Exception], bool],
    base_delay: float = 0.2,
    max_delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation` up to `attempts` times, waiting a random ("full jitter") slice of an exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            delay = random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not crypto
            logger.info("retrying", extra={"attempt": attempt, "delay": round(delay, 3), "error": type(exc).__name__})
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
