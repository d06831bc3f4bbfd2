import pytest

from marketplace.resilience import CircuitBreaker, CircuitOpen, retrying


class Boom(Exception):
    """A dependency's failure."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fail() -> None:
    raise Boom


def test_retries_are_bounded_and_the_last_error_surfaces():
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky():
        calls.append(1)
        raise Boom

    with pytest.raises(Boom):
        retrying(flaky, attempts=3, is_retryable=lambda e: True, base_delay=0.1, max_delay=1, sleep=sleeps.append)

    assert len(calls) == 3
    assert len(sleeps) == 2
    assert all(0 <= delay <= 0.1 * 2**i for i, delay in enumerate(sleeps))


def test_a_non_retryable_error_is_not_retried():
    calls = []

    def refused():
        calls.append(1)
        raise ValueError

    with pytest.raises(ValueError):  # noqa: PT011
        retrying(refused, attempts=5, is_retryable=lambda e: isinstance(e, Boom), sleep=lambda d: None)

    assert len(calls) == 1


def test_retrying_returns_the_first_success():
    results = iter([Boom(), Boom(), "ok"])

    def third_time():
        value = next(results)
        if isinstance(value, Exception):
            raise value
        return value

    assert retrying(third_time, attempts=3, is_retryable=lambda e: True, sleep=lambda d: None) == "ok"


def test_the_breaker_opens_after_the_threshold_and_fails_fast():
    clock = Clock()
    breaker = CircuitBreaker("stripe", failure_threshold=3, reset_after=30, clock=clock)
    for _ in range(3):
        with pytest.raises(Boom):
            breaker.call(fail, counts_as_failure=lambda e: True)
    calls = []

    with pytest.raises(CircuitOpen) as opened:
        breaker.call(lambda: calls.append(1), counts_as_failure=lambda e: True)

    assert breaker.state == "open"
    assert calls == []
    assert opened.value.retry_after == 30


def test_half_open_lets_one_trial_through_and_success_closes():
    clock = Clock()
    breaker = CircuitBreaker("stripe", failure_threshold=1, reset_after=10, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail, counts_as_failure=lambda e: True)
    clock.now = 10

    assert breaker.state == "half_open"
    assert breaker.call(lambda: "pong", counts_as_failure=lambda e: True) == "pong"
    assert breaker.state == "closed"


def test_a_failed_trial_opens_the_circuit_again():
    clock = Clock()
    breaker = CircuitBreaker("stripe", failure_threshold=1, reset_after=10, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail, counts_as_failure=lambda e: True)
    clock.now = 10

    with pytest.raises(Boom):
        breaker.call(fail, counts_as_failure=lambda e: True)

    assert breaker.state == "open"


def test_errors_that_are_the_callers_do_not_count():
    breaker = CircuitBreaker("stripe", failure_threshold=1)

    with pytest.raises(ValueError):  # noqa: PT011
        breaker.call(lambda: (_ for _ in ()).throw(ValueError()), counts_as_failure=lambda e: isinstance(e, Boom))

    assert breaker.state == "closed"
