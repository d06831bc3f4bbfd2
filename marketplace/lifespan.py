"""The ASGI lifespan protocol: what a server process does when it starts and when it stops.

At shutdown (uvicorn has stopped taking requests and finished the ones in hand)
the work those requests left running (money steps still at Stripe) is given what
is left of the grace to finish, then the process's outbound clients are closed, so
no connection to Stripe is left half-open. https://asgi.readthedocs.io/en/latest/specs/lifespan.html
"""

import asyncio
import logging
from typing import Any

from django.conf import settings

from marketplace import handler, metrics, shutdown

logger = logging.getLogger(__name__)


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    from payments import gateway

    monitor: asyncio.Task[None] | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if settings.ASYNCIO_DEBUG:
                # Blocking work on the event loop shows up as an `asyncio` warning naming the callback.
                loop = asyncio.get_running_loop()
                loop.set_debug(True)
                loop.slow_callback_duration = settings.ASYNCIO_SLOW_CALLBACK_SECONDS
            monitor = asyncio.get_running_loop().create_task(metrics.monitor_event_loop())
            logger.info("server.started")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if monitor is not None:
                monitor.cancel()
            await shutdown.finish_held_work()
            await gateway.aclose()
            handler.REQUEST_THREADS.close()
            logger.info("server.stopped")
            await send({"type": "lifespan.shutdown.complete"})
            return
