"""The channel layer on Redis: channels-redis's, without the per-socket queues it never gives back.

channels-redis buffers each process-local channel's messages in `receive_buffer`, a
queue per channel name, and forgets a queue only when its receive takes the last
message or is cancelled while waiting for the process's reader (the one receive that
reads Redis for every channel of the process). Two ways left a queue behind for good,
one per socket (bench/bench_soak.py measured both; docs/benchmarks.md, "Soak"):

- a consumer ends while its receive *is* the reader: on a quiet server the only socket
  is the reader, so every closed socket left an empty queue;
- a message reaches a channel whose consumer has ended (a group send that raced the
  group leave, the socket's own broadcast still in Redis when it closed): the reader
  files it under the dead channel, and nobody reads it (django/channels_redis#384).

`receive` drops the queue whichever way a cancellation finds it. `forget(channel)`, which
a consumer calls when it ends, drops the queue and files nothing more for the channel for
two message expiries, past which channels-redis has discarded anything still addressed to it.
"""

import asyncio
import collections
import functools
import time
from typing import Any

from channels_redis.core import BoundedQueue
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer


class _ReceiveBuffer(collections.defaultdict[str, Any]):
    """channels-redis's buffer of queues by channel, which keeps none for a channel that has ended."""

    def __init__(self, queue: Any, ended: "collections.OrderedDict[str, float]") -> None:
        super().__init__(queue)
        self.ended = ended

    def __missing__(self, channel: str) -> Any:
        if channel in self.ended:
            # A queue nobody keeps: the message put into it goes with it.
            return self.default_factory()  # type: ignore[misc]
        return super().__missing__(channel)


class RedisChannelLayer(_RedisChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.receive_buffer = _ReceiveBuffer(functools.partial(BoundedQueue, self.capacity), self.ended)

    async def receive(self, channel: str) -> dict[str, Any]:
        try:
            message: dict[str, Any] = await super().receive(channel)
        except asyncio.CancelledError:
            # Channels cancels a consumer's receive when the consumer ends: nobody reads this queue again.
            self.receive_buffer.pop(channel, None)
            raise
        return message

    def forget(self, channel: str) -> None:
        """`channel`'s consumer has ended: drop what is buffered for it, and whatever still arrives for it."""
        now = time.monotonic()
        self.receive_buffer.pop(channel, None)
        self.ended[channel] = now
        remember = 2 * self.expiry
        while self.ended and next(iter(self.ended.values())) < now - remember:
            self.ended.popitem(last=False)
