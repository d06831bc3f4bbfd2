"""`/ws/notifications/`: a user's notification log, replayed and then followed live.

Connect with `?after=N` (the last seq you saw) to get every notification after
it first, in order; without it, the stream starts at the newest seq, which the
`hello` frame carries. Each frame is `{"seq", "event", "payload", "sent_at"}`,
each seq once and in order on one socket: a push that would skip a seq makes the
consumer read the gap from the log first, and a push it has already sent is
dropped. Where no cross-process channel layer is configured (the embedded
default's in-memory layer), pushes from the worker cannot arrive, so the
consumer reads the log every NOTIFICATIONS_POLL_SECONDS instead.
"""

import asyncio
import contextlib
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings

from marketplace.notifications import log
from marketplace.realtime import RealtimeConsumer, ws_db
from marketplace.schemas import MAX_ID
from marketplace.throttling import TokenBucket

logger = logging.getLogger(__name__)

REPLAY_PAGE = 100


_SEQ = re.compile(r"[0-9]{1,16}")


def _after(scope: dict[str, Any]) -> int | None:
    """`?after=N`: ASCII digits only (not superscripts or other scripts' digits), at most MAX_ID; else "start now"."""
    values = parse_qs(bytes(scope.get("query_string", b"")).decode("latin1")).get("after")
    if not values or not _SEQ.fullmatch(values[-1]) or int(values[-1]) > MAX_ID:
        return None
    return int(values[-1])


class NotificationConsumer(RealtimeConsumer):
    """Server-to-client; the client may send `{"type": "sync", "after": N}` to replay from N."""

    slot_kind = "notifications"
    max_connections_setting = "NOTIFICATIONS_MAX_CONNECTIONS_PER_USER"
    last_seq = 0
    poller: asyncio.Task[None] | None = None
    replay: asyncio.Task[None] | None = None

    async def open(self) -> None:
        user_id = self.scope["user"].pk
        self.lock = asyncio.Lock()
        # Sync frames read the log: a few a second are plenty, more are refused.
        self.bucket = TokenBucket(rate=1.0, burst=5)
        await self.join(log.user_group(user_id))
        await self.accept()
        newest = await ws_db(log.last_seq)(user_id)
        after = _after(self.scope)
        self.last_seq = newest if after is None else min(after, newest)
        await self.send_json({"event": "hello", "payload": {"user_id": user_id, "seq": newest}})
        self._replay_in_background()
        if settings.NOTIFICATIONS_POLL_SECONDS > 0:
            self.poller = asyncio.create_task(self._poll())

    def _replay_in_background(self, *, then: dict[str, Any] | None = None) -> None:
        """Replay in a task, so the consumer keeps handling its channel messages (a credential
        that ends stops a long replay at once, not after it)."""

        async def run() -> None:
            await self.catch_up()
            if then is not None and not self.closed:
                await self.send_json(then)

        self.replay = asyncio.create_task(run())

    async def close_down(self) -> None:
        for task in (self.poller, self.replay):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(settings.NOTIFICATIONS_POLL_SECONDS)
            try:
                await self.catch_up()
            except Exception:
                # A database hiccup skips one poll; the next one reads from the same seq.
                logger.warning("notification.poll_failed", exc_info=True)

    async def catch_up(self) -> None:
        """Send everything in the log after the last seq this socket sent, in order."""
        async with self.lock:
            while not self.gone():
                rows, more = await ws_db(log.notifications_after)(
                    user_id=self.scope["user"].pk, after=self.last_seq, limit=REPLAY_PAGE
                )
                for row in rows:
                    if self.gone():  # closed while this page was read or sent: stop at once
                        return
                    await self.send_json(log.as_frame(row))
                    self.last_seq = row.seq or self.last_seq
                if not more:
                    return

    async def handle(self, frame: dict[str, Any]) -> None:
        after = frame.get("after")
        if (
            frame.get("type") != "sync"
            or not isinstance(after, int)
            or isinstance(after, bool)
            or not 0 <= after <= MAX_ID
        ):
            await self.refuse("invalid_frame", 'The one frame this stream takes is {"type": "sync", "after": N}.')
            return
        if not self.bucket.take():
            await self.refuse("rate_limited", "Too many sync frames; slow down.")
            return
        if self.replay is not None and not self.replay.done():
            # The new sync replaces the replay in progress (it resumes from the client's own seq).
            self.replay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.replay
        newest = await ws_db(log.last_seq)(self.scope["user"].pk)
        async with self.lock:
            # What the client has seen, but never past the newest seq (that would mute the stream).
            self.last_seq = min(after, newest)
        self._replay_in_background(then={"event": "synced", "payload": {"seq": newest}})

    # --- events from the channel layer ---------------------------------------------

    async def notify(self, message: dict[str, Any]) -> None:
        seq = message["seq"]
        if seq <= self.last_seq:
            return  # already sent (by a replay or a poll)
        if seq == self.last_seq + 1 and not self.lock.locked():
            self.last_seq = seq
            await self.send_json({key: message[key] for key in ("seq", "event", "payload", "sent_at")})
            return
        await self.catch_up()  # a gap: read it from the log, which has every row up to this seq
