"""Graceful shutdown of a web process: drain, then stop, then close.

On SIGTERM (`manage.py serve`, which `runall` and deployments run):

1. readiness (`/health/ready`) answers 503 `draining` at once, while requests are
   still served, so a load balancer takes the process out of rotation;
2. after `SHUTDOWN_DRAIN_SECONDS` (long enough for the balancer's next probe), every
   open websocket is closed with 1012 ("service restart", RFC 6455 §7.4.1 as
   registered by IANA), so clients reconnect to another process and resync;
3. uvicorn stops accepting and finishes the requests in hand, for at most
   `SHUTDOWN_GRACE_SECONDS`;
4. the ASGI lifespan shutdown (marketplace.lifespan) closes the outbound clients.

A second SIGTERM or SIGINT skips the wait. docs/operations.md has the numbers.
"""

import asyncio
import contextlib
import logging
import signal
import threading
import weakref
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART = 1012

_draining = threading.Event()
_open_sockets: "weakref.WeakSet[Any]" = weakref.WeakSet()


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
        if self._drain is not None or self._loop is None or sig not in (signal.SIGTERM, signal.SIGINT):
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
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
            self.should_exit = True
