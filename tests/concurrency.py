"""Run calls at the same instant on separate threads, each with its own database connection."""

import threading
from collections.abc import Callable

from django.db import connections

from marketplace.errors import DomainError


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
