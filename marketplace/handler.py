"""Django's ASGI handler, with each request's thread for synchronous code taken from a pool instead of made anew.

Django runs a request's synchronous code (sync middleware, the view, the ORM) in a
thread of its own: `ASGIHandler.__call__` enters an `asgiref.sync.ThreadSensitiveContext`
per request, and asgiref makes a one-thread executor for it, then starts a second thread
to join the first when the request ends. Starting a thread blocks the event loop until
the new thread runs; on a busy server that is a wait for a core, paid twice per request
by every other connection too. Profiling a bare django-ninja "hello" under load put about
two thirds of each request's time on the event loop there (docs/benchmarks.md, "API").

`PooledThreadsASGIHandler` hands `ThreadSensitiveContext` an executor (asgiref's own
parameter: "the caller owns the executor: it is not shut down on exit, so the executor
can be used again") from `RequestThreads`, and takes it back when the request ends.
Everything else is Django's: one thread per request in flight, thread-sensitive code of
a request always on that request's thread, the same middleware and signals.

An executor goes back to the pool only when its thread is idle, so the next request never
queues behind a stranger's leftovers. In practice Django's `handle` itself waits: a client
that vanished, or a view that raised, still ends with `request_finished` on the request's
thread (closing its database connections), after the synchronous work is done; a thread
then goes back idle and clean, as a WSGI server's threads do after a 500. What the check
guards is the rest: a request task cancelled while its code still runs (the server's
shutdown grace ran out), or a failure outside Django's handling. Such an executor is shut
down without waiting, its thread ends when the work does, and its database connections are
closed on it first, since `request_finished` may not have run.
"""

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler
from django.db import connections

logger = logging.getLogger(__name__)


class RequestThread(ThreadPoolExecutor):
    """A one-thread executor that knows whether its thread is idle (all it was given has finished)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self._last: Future[Any] | None = None

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self._last = super().submit(fn, *args, **kwargs)
        return self._last

    def idle(self) -> bool:
        # One worker runs its queue in order: when the last submitted call is done, all are.
        return self._last is None or self._last.done()


class RequestThreads:
    """Idle `RequestThread`s, at most `keep` of them; used from the event loop's thread only.

    `take` returns an idle one or makes one; `give_back` keeps an idle one for the next
    request, and shuts down (without waiting) one that is busy or beyond `keep`. So the
    threads alive are those of the requests in flight plus at most `keep` idle ones.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: list[RequestThread] = []

    def take(self) -> RequestThread:
        return self._idle.pop() if self._idle else RequestThread()

    def give_back(self, executor: RequestThread) -> None:
        if executor.idle() and len(self._idle) < self.keep:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)

    def close(self) -> None:
        """Shut the idle threads down (the ASGI lifespan's shutdown); requests still in flight keep theirs."""
        while self._idle:
            self._idle.pop().shutdown(wait=False)

    def __len__(self) -> int:
        return len(self._idle)


# The server process's pool. 64 idle threads cover the bursts one process serves (each thread
# idles at about 8 MiB of virtual, a few KiB of resident, memory); beyond, threads end with their request.
REQUEST_THREADS = RequestThreads(keep=64)


class PooledThreadsASGIHandler(ASGIHandler):
    """Django's ASGIHandler, but each request's sync thread comes from `threads` (see the module's docstring)."""

    def __init__(self, threads: RequestThreads = REQUEST_THREADS) -> None:
        super().__init__()
        self.threads = threads

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.take()
        ended = False
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
            ended = True
        finally:
            if not ended:
                # Cancelled or failed: Django's request_finished may not have run, and with it the
                # closing of this thread's database connections. Close them on the thread (which
                # also keeps the thread busy, so it is shut down rather than reused).
                executor.submit(connections.close_all)
            self.threads.give_back(executor)
