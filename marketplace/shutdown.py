"""Graceful shutdown of a web process: drain, then stop, then close.

On SIGTERM (`manage.py serve`, which `runall` and deployments run):

1. readiness (`/health/ready`) answers 503 `draining` at once, while requests are
   still served, so a load balancer takes the process out of rotation;
2. after `SHUTDOWN_DRAIN_SECONDS` (long enough for the balancer's next probe), every
   open websocket is closed with 1012 ("service restart", RFC 6455 §7.4.1 as
   registered by IANA), so clients reconnect to another process and resync;
3. uvicorn stops accepting and finishes the requests in hand, for at most
   `SHUTDOWN_GRACE_SECONDS`;
4. the ASGI lifespan shutdown (marketplace.lifespan) lets the work requests left
   running finish within what is left of that grace (`hold`: a money step whose
   request answered 503 at its deadline is still at Stripe), then closes the
   outbound clients.

A second SIGTERM or SIGINT ends the process at once (exit status 128 + the signal), in-flight work
and all; docs/operations.md has the numbers.
"""

import asyncio
import contextlib
import contextvars
import logging
import os
import signal
import threading
import time
import weakref
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART = 1012

_draining = threading.Event()
_open_sockets: "weakref.WeakSet[Any]" = weakref.WeakSet()
# Work a request started and left running, which the process finishes before it stops (strong references:
# the loop holds only weak ones to tasks).
_held: set[asyncio.Task[Any]] = set()


class _Stopping:
    """What this process knows once it has begun to stop."""

    def __init__(self) -> None:
        # When the grace for requests in hand ends (time.monotonic()).
        self.grace_ends_at: float | None = None


_stopping = _Stopping()


def is_draining() -> bool:
    """Whether this process has begun to shut down (readiness then answers 503 `draining`)."""
    return _draining.is_set()


def begin_draining() -> None:
    _draining.set()


def socket_opened(consumer: Any) -> None:
    """Track an open websocket consumer so a drain can close it (held weakly: a finished one just vanishes)."""
    _open_sockets.add(consumer)


def socket_closed(consumer: Any) -> None:
    _open_sockets.discard(consumer)


async def close_sockets(code: int = CLOSE_SERVICE_RESTART) -> int:
    """Close every websocket this process holds with `code`; returns how many were closed."""
    consumers = [consumer for consumer in list(_open_sockets) if not getattr(consumer, "closed", True)]
    for consumer in consumers:
        with contextlib.suppress(Exception):
            await consumer.close(code=code)
    return len(consumers)


def hold(task: asyncio.Task[Any]) -> None:
    """Keep the process from stopping until `task` is done, within the shutdown's grace.

    For work that outlives the request that started it: a money step runs shielded
    from its request, and when Stripe is slower than the request's deadline the
    request answers 503 while the step is still at Stripe. Stopping under it would
    leave the step claimed for the sweep, a minute or more later, and a retry of the
    request would find the milestone busy until then.
    """
    _held.add(task)
    task.add_done_callback(_held.discard)


async def finish_held_work() -> int:
    """Wait for this loop's held work, until the grace ends; returns how many were left unfinished.

    The grace is the one uvicorn gives requests in hand (it began when the server
    stopped accepting), or SHUTDOWN_GRACE_SECONDS from now when the server did not
    drain (plain uvicorn). What is still running then is logged and left to the
    sweep, which replays it under the same idempotency key.
    """
    from django.conf import settings

    loop = asyncio.get_running_loop()
    pending = [task for task in _held if task.get_loop() is loop and not task.done()]
    if not pending:
        return 0
    ends_at = _stopping.grace_ends_at
    if ends_at is None:
        ends_at = time.monotonic() + settings.SHUTDOWN_GRACE_SECONDS
    logger.info("server.finishing_work", extra={"count": len(pending)})
    unfinished = set(pending)
    while unfinished and (left := ends_at - time.monotonic()) > 0:
        _, unfinished = await asyncio.wait(unfinished, timeout=min(left, 0.1))
    if unfinished:
        logger.warning("server.work_abandoned", extra={"count": len(unfinished)})
    return len(unfinished)


class DrainingServer(uvicorn.Server):
    """uvicorn's Server, which drains before it stops (see the module's docstring)."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Future[None] | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler runs in whatever context the loop's thread was in when the signal came, a
        # request's (with its request id) as often as not; the drain, and what it logs, is nobody's request.
        contextvars.Context().run(self._on_signal, sig, frame)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or sig not in (signal.SIGTERM, signal.SIGINT):
            super().handle_exit(sig, frame)  # not serving yet, or not a stop signal: uvicorn's own way
            return
        if self._drain is not None:
            # A second signal: stop now, here. Any gentler way out waits for a request's synchronous code
            # still running (a query waiting on a lock): uvicorn's graceful shutdown, asyncio.run's
            # cancelling of tasks (asgiref lets the thread's work finish), the interpreter's joining of
            # threads at exit. Money steps left mid-way are the sweep's, as after a SIGKILL. The status
            # is the shell's for a process ended by that signal (128 + its number).
            logger.warning("server.stopped_at_once", extra={"signal": sig})
            logging.shutdown()
            os._exit(128 + sig)
        self._captured_signals.append(sig)
        begin_draining()
        logger.info("server.draining", extra={"drain_seconds": self.drain_seconds})
        # Signal handlers run on the main thread between the loop's steps: hand the work to the loop.
        self._drain = asyncio.run_coroutine_threadsafe(self._drain_then_stop(), self._loop)  # type: ignore[assignment]

    async def _drain_then_stop(self) -> None:
        try:
            await asyncio.sleep(self.drain_seconds)
            closed = await close_sockets()
            logger.info("server.sockets_closed", extra={"count": closed})
        finally:
            grace = self.config.timeout_graceful_shutdown
            _stopping.grace_ends_at = None if grace is None else time.monotonic() + grace
            self.should_exit = True
