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
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings

from marketplace.notifications import log
from marketplace.realtime import RealtimeConsumer, ws_db

logger = logging.getLogger(__name__)

REPLAY_PAGE = 100


def _after(scope: dict[str, Any]) -> int | None:
    values = parse_qs(bytes(scope.get("query_string", b"")).decode("latin1")).get("after")
    if not values or not values[0].isdigit() or len(values[0]) > 18:
        return None
    return int(values[0])


class NotificationConsumer(RealtimeConsumer):
    """Server-to-client; the client may send `{"type": "sync", "after": N}` to replay from N."""

    slot_kind = "notifications"
    max_connections_setting = "NOTIFICATIONS_MAX_CONNECTIONS_PER_USER"
    last_seq = 0
    poller: asyncio.Task[None] | None = None

    async def open(self) -> None:
        user_id = self.scope["user"].pk
        self.lock = asyncio.Lock()
        await self.join(log.user_group(user_id))
        await self.accept()
        newest = await ws_db(log.last_seq)(user_id)
        after = _after(self.scope)
        self.last_seq = newest if after is None else min(after, newest)
        await self.send_json({"event": "hello", "payload": {"user_id": user_id, "seq": newest}})
        await self.catch_up()
        if settings.NOTIFICATIONS_POLL_SECONDS > 0:
            self.poller = asyncio.create_task(self._poll())

    async def close_down(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller

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
            while True:
                rows, more = await ws_db(log.notifications_after)(
                    user_id=self.scope["user"].pk, after=self.last_seq, limit=REPLAY_PAGE
                )
                for row in rows:
                    await self.send_json(log.as_frame(row))
                    self.last_seq = row.seq or self.last_seq
                if not more:
                    return

    async def handle(self, frame: dict[str, Any]) -> None:
        after = frame.get("after")
        if frame.get("type") != "sync" or not isinstance(after, int) or isinstance(after, bool) or after < 0:
            await self.refuse("invalid_frame", 'The one frame this stream takes is {"type": "sync", "after": N}.')
            return
        async with self.lock:
            self.last_seq = after  # the client says what it has seen; the log sends what follows
        await self.catch_up()

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
