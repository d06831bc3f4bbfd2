import asyncio
import time

import pytest

from marketplace.resilience import Bulkhead, BulkheadFull, CircuitBreaker, CircuitOpen, retrying


class Boom(Exception):
    """A dependency's failure."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_retries_are_bounded_and_the_last_error_surfaces():
    calls: list[int] = []

    async def flaky():
        calls.append(1)
        raise Boom

    with pytest.raises(Boom):
        await retrying(flaky, attempts=3, is_retryable=lambda e: True, base_delay=0.001, max_delay=0.01)

    assert len(calls) == 3


async def test_a_non_retryable_error_is_not_retried():
    calls = []

    async def refused():
        calls.append(1)
        raise ValueError

    with pytest.raises(ValueError):  # noqa: PT011
        await retrying(refused, attempts=5, is_retryable=lambda e: isinstance(e, Boom), base_delay=0.001)

    assert len(calls) == 1


async def test_retrying_returns_the_first_success():
    results = iter([Boom(), Boom(), "ok"])

    async def third_time():
        value = next(results)
        if isinstance(value, Exception):
            raise value
        return value

    assert await retrying(third_time, attempts=3, is_retryable=lambda e: True, base_delay=0.001) == "ok"


async def test_a_deadline_bounds_all_attempts_together():
    calls = []

    async def hangs():
        calls.append(1)
        await asyncio.sleep(10)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await retrying(hangs, attempts=5, is_retryable=lambda e: True)

    assert time.monotonic() - started < 5
    assert calls == [1]


async def test_slow_calls_open_the_breaker_even_when_they_succeed():
    clock = Clock()
    breaker = CircuitBreaker("stripe", failure_threshold=2, reset_after=30, slow_call_seconds=5, clock=clock)

    async def slow_but_fine():
        clock.now += 9
        return "ok"

    results = [await breaker.acall(slow_but_fine, counts_as_failure=lambda e: True) for _ in range(2)]

    assert results == ["ok", "ok"]
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        await breaker.acall(slow_but_fine, counts_as_failure=lambda e: True)


async def test_a_cancelled_call_neither_opens_nor_closes_the_breaker():
    breaker = CircuitBreaker("stripe", failure_threshold=1, reset_after=30)

    async def cancelled():
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await breaker.acall(cancelled, counts_as_failure=lambda e: True)

    assert breaker.state == "closed"
    assert breaker.failures == 0


async def test_the_bulkhead_refuses_at_once_when_every_slot_is_taken():
    bulkhead = Bulkhead("stripe", limit=2, wait_seconds=0.05)
    release, both_in = asyncio.Event(), asyncio.Event()
    entered = []

    async def holds_a_slot():
        entered.append(1)
        if len(entered) == 2:
            both_in.set()
        await release.wait()
        return "done"

    holders = [asyncio.create_task(bulkhead.run(holds_a_slot)) for _ in range(2)]
    await asyncio.wait_for(both_in.wait(), timeout=5)
    with pytest.raises(BulkheadFull):
        await bulkhead.run(holds_a_slot)
    release.set()

    assert await asyncio.gather(*holders) == ["done", "done"]
    assert len(entered) == 2
    assert await bulkhead.run(holds_a_slot) == "done"


async def afail() -> None:
    raise Boom


async def answer(value):
    return value


async def test_the_breaker_opens_after_the_threshold_and_fails_fast():
    clock = Clock()
    breaker = CircuitBreaker("stripe", failure_threshold=3, reset_after=30, clock=clock)
    for _ in range(3):
        with pytest.raises(Boom):
            await breaker.acall(afail, counts_as_failure=lambda e: True)
    calls = []

    async def counted():
        calls.append(1)

    with pytest.raises(CircuitOpen) as opened:
        await breaker.acall(counted, counts_as_failure=lambda e: True)

    assert breaker.state == "open"
    assert calls == []
    assert opened.value.retry_after == 30


async def test_half_open_lets_one_trial_through_and_success_closes():
    clock = Clock()
    breaker = CircuitBreaker("stripe", failure_threshold=1, reset_after=10, clock=clock)
    with pytest.raises(Boom):
        await breaker.acall(afail, counts_as_failure=lambda e: True)
    clock.now = 10

    before = breaker.state
    assert await breaker.acall(lambda: answer("pong"), counts_as_failure=lambda e: True) == "pong"
    after = breaker.state
    assert (before, after) == ("half_open", "closed")


async def test_a_failed_trial_opens_the_circuit_again():
    clock = Clock()
    breaker = CircuitBreaker("stripe", failure_threshold=1, reset_after=10, clock=clock)
    with pytest.raises(Boom):
        await breaker.acall(afail, counts_as_failure=lambda e: True)
    clock.now = 10

    with pytest.raises(Boom):
        await breaker.acall(afail, counts_as_failure=lambda e: True)

    assert breaker.state == "open"


async def test_errors_that_are_the_callers_do_not_count():
    breaker = CircuitBreaker("stripe", failure_threshold=1)

    async def refused():
        raise ValueError

    with pytest.raises(ValueError):  # noqa: PT011
        await breaker.acall(refused, counts_as_failure=lambda e: isinstance(e, Boom))

    assert breaker.state == "closed"
