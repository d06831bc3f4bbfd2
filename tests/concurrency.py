"""Run calls at the same instant on separate threads, each with its own database connection."""

import threading
from collections.abc import Callable

from django.db import connections

from marketplace.errors import DomainError
from tests.processes import wait_until


def race(*calls: Callable[[], object]) -> list[object]:
    """Start every call at the same moment, each on its own thread and database connection."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            outcomes[index] = call()
        except DomainError as exc:
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def one_waits_for_the_other(
    holder: Callable[[threading.Event, threading.Event], object],
    waiter: Callable[[], object],
    *,
    waiting: Callable[[], bool],
) -> list[BaseException]:
    """Interleave two calls at a chosen point: `holder(held, release)` runs on a thread until it sets `held` (while
    it holds its locks), then waits for `release`; `waiter` starts on a second thread, and once `waiting()` says it
    is blocked, the holder is released. Both are joined; returns what either raised, in the order they raised."""
    held, release = threading.Event(), threading.Event()
    raised: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:  # whatever either side raised, the caller asserts on
            raised.append(exc)
        finally:
            connections.close_all()

    holding = threading.Thread(target=run, args=(lambda: holder(held, release),))
    waiting_thread = threading.Thread(target=run, args=(waiter,))
    holding.start()
    if not held.wait(timeout=10):
        release.set()
        holding.join(timeout=10)
        raise AssertionError(f"the holder never got to its point; it raised {raised}")
    waiting_thread.start()
    try:
        wait_until(waiting, timeout=10, what="the second call to block on the first")
    finally:
        release.set()
        holding.join(timeout=15)
        waiting_thread.join(timeout=15)
    return raised
