"""Per-user notifications over `/ws/notifications/`.

`notify_user` is what services call; it sends after the surrounding
transaction commits, so nobody is told about something that was rolled back.
The channel layer delivers at most once: a notification is a nudge to reload,
and the database stays the record.
"""

import asyncio
import logging
import weakref
from typing import Any

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _send(user_id: int, event: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "notify", "event": event, "payload": payload, "sent_at": timezone.now().isoformat()}
    try:
        async_to_sync(layer.group_send)(user_group(user_id), message)
    except Exception:
        # A notification lost to a layer outage must not fail the write that caused it.
        logger.exception("notification.send_failed", extra={"user_id": user_id, "event": event})


# At most this many group_discard calls in flight per event loop: when thousands of sockets
# close at once, the rest wait their turn instead of exhausting the layer's connection pool.
LEAVE_CONCURRENCY = 50
_leave_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()


async def leave_group(layer: Any, group: str, channel: str) -> None:
    """Leave a group on disconnect, with backpressure, never letting the layer crash the closing consumer.

    A membership that cannot be removed lapses by itself after the layer's group expiry,
    so a failure is logged, not raised.
    """
    loop = asyncio.get_running_loop()
    slots = _leave_slots.setdefault(loop, asyncio.Semaphore(LEAVE_CONCURRENCY))
    try:
        async with slots:
            await layer.group_discard(group, channel)
    except Exception:
        logger.warning("channel_layer.group_discard_failed", extra={"group": group}, exc_info=True)


def notify_user(*, user_id: int, event: str, payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _send(user_id, event, payload))


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """Server-to-client only: each frame is `{"event": ..., "payload": {...}, "sent_at": ...}`."""

    async def connect(self) -> None:
        self.group = user_group(self.scope["user"].pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"event": "hello", "payload": {"user_id": self.scope["user"].pk}})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await leave_group(self.channel_layer, self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"event": "error", "payload": {"code": "read_only", "detail": "This stream is one-way."}})

    async def notify(self, message: dict[str, Any]) -> None:
        await self.send_json({"event": message["event"], "payload": message["payload"], "sent_at": message["sent_at"]})
