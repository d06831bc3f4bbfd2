"""Calling things that fail or crawl: a bulkhead, a deadline, bounded retries, a breaker that counts slow calls.

Used for every call to Stripe (`payments.gateway`). The pieces, outermost first:

1. `Bulkhead`: at most N calls in flight per process (and event loop); a caller that
   cannot get a slot within its wait is refused at once. This keeps a slow
   dependency from taking every worker slot and every pooled connection with it.
2. `CircuitBreaker`: after `failure_threshold` failures in a row it opens and
   refuses calls for `reset_after` seconds, then lets one trial through. A call
   slower than `slow_call_seconds` counts as a failure even when it succeeds, as
   resilience4j's slow-call threshold does: a dependency that answers in 9 s is
   as bad for our callers as one that does not answer.
3. A deadline (`asyncio.timeout`) around all attempts together, so retries never
   stretch an operation beyond what its caller was promised.
4. Retries by tenacity: bounded attempts with full-jitter exponential backoff,
   only for errors the caller marks as transient. Retries are only safe for calls
   that carry an idempotency key, which is why they wrap the operation, not its
   arguments.

Why our own breaker rather than pybreaker or purgatory: neither counts slow calls
as failures, and pybreaker's async support needs Tornado. The state is kept per
process, not in Redis: each process judges Stripe by its own calls, a Redis outage
cannot change how we treat Stripe, and a shared breaker would let one process's
network trouble stop every other process's payments. With N processes, Stripe
sees at most N trial calls per `reset_after` while it is down.
"""

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

logger = logging.getLogger(__name__)

State = Literal["closed", "open", "half_open"]


class CircuitOpen(Exception):
    """The breaker refuses calls; `retry_after` is in seconds."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"{name} is unavailable; retry in {retry_after:.0f}s")
        self.name = name
        self.retry_after = retry_after


class BulkheadFull(Exception):
    """No call slot freed up within the wait; `retry_after` is in seconds."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"too many calls to {name} in flight")
        self.name = name
        self.retry_after = retry_after


@dataclass
class CircuitBreaker:
    """Closed: calls go through. After `failure_threshold` failures in a row it opens: calls fail at once.

    After `reset_after` seconds one trial call is let through (half-open): success
    closes the circuit, failure opens it again for another `reset_after`. A call
    that takes longer than `slow_call_seconds` is a failure even if it succeeded.
    Thread-safe: the event loops of several threads (worker tasks) may share one breaker.
    """

    name: str
    failure_threshold: int = 5
    reset_after: float = 30.0
    slow_call_seconds: float = float("inf")
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _trial_running: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_after else "open"

    def before_call(self) -> State:
        """Admit a call or raise CircuitOpen; returns the state the call was admitted in."""
        with self._lock:
            state = self.state
            if state == "open" or (state == "half_open" and self._trial_running):
                assert self.opened_at is not None  # noqa: S101 - set whenever not closed
                raise CircuitOpen(self.name, max(1.0, self.reset_after - (self.clock() - self.opened_at)))
            if state == "half_open":
                self._trial_running = True
            return state

    def after_call(self, admitted_in: State, *, failed: bool, elapsed: float) -> None:
        """Record one admitted call's outcome: `failed` (a counted error) or how long it took (seconds)."""
        slow = elapsed >= self.slow_call_seconds
        with self._lock:
            self._trial_running = False
            if failed or slow:
                self.failures += 1
                if admitted_in == "half_open" or self.failures >= self.failure_threshold:
                    self.opened_at = self.clock()
                    logger.warning(
                        "circuit.opened",
                        extra={"circuit": self.name, "failures": self.failures, "slow": slow and not failed},
                    )
                return
            if self.opened_at is not None:
                logger.info("circuit.closed", extra={"circuit": self.name})
            self.failures, self.opened_at = 0, None

    async def acall[T](
        self, operation: Callable[[], Awaitable[T]], *, counts_as_failure: Callable[[BaseException], bool]
    ) -> T:
        """Run an async `operation` through the breaker. A cancelled call counts as neither success nor failure."""
        admitted_in = self.before_call()
        started = self.clock()
        try:
            result = await operation()
        except asyncio.CancelledError:
            with self._lock:
                self._trial_running = False
            raise
        except Exception as exc:
            self.after_call(admitted_in, failed=counts_as_failure(exc), elapsed=self.clock() - started)
            raise
        self.after_call(admitted_in, failed=False, elapsed=self.clock() - started)
        return result


class Bulkhead:
    """At most `limit` concurrent calls per event loop; waiting for a slot is bounded by `wait_seconds`.

    asyncio primitives belong to one event loop, so each loop gets its own
    semaphore: one for the ASGI server's loop, one per `async_to_sync` run in a
    worker (whose concurrency the worker's pool already bounds).
    """

    def __init__(self, name: str, *, limit: int, wait_seconds: float) -> None:
        self.name, self.limit, self.wait_seconds = name, limit, wait_seconds
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        return semaphore

    async def run[T](self, operation: Callable[[], Awaitable[T]]) -> T:
        semaphore = self._semaphore()
        try:
            async with asyncio.timeout(self.wait_seconds):
                await semaphore.acquire()
        except TimeoutError:
            logger.warning("bulkhead.full", extra={"bulkhead": self.name, "limit": self.limit})
            raise BulkheadFull(self.name, retry_after=max(1.0, self.wait_seconds)) from None
        try:
            return await operation()
        finally:
            semaphore.release()


async def retrying[T](
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    is_retryable: Callable[[BaseException], bool],
    base_delay: float = 0.2,
    max_delay: float = 2.0,
) -> T:
    """Await `operation` up to `attempts` times, sleeping a full-jitter slice of an exponential backoff between.

    The last error surfaces unchanged. Put a deadline (`asyncio.timeout`) around
    the call to bound the whole, retries included.
    """
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=base_delay, max=max_delay),
        # Cancellation (a deadline, a client gone) always ends the loop; it is never a reason to try again.
        retry=retry_if_exception(lambda exc: not isinstance(exc, asyncio.CancelledError) and is_retryable(exc)),
        reraise=True,
        before_sleep=lambda state: logger.info(
            "retrying",
            extra={
                "attempt": state.attempt_number,
                "error": type(state.outcome.exception()).__name__ if state.outcome else None,
            },
        ),
    ):
        with attempt:
            return await operation()
    raise AssertionError("unreachable")  # pragma: no cover


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says a dependency is unreachable (Redis, the database, the network), not that our code is wrong.

    Callers answer an outage with 503, a close code 1013 or a logged warning, and let
    anything else propagate as the bug it is.
    """
    from django.db import InterfaceError, OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, (OperationalError, InterfaceError, OSError, RedisConnectionError, RedisTimeoutError))
