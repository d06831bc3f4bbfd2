"""Chat over websockets: `/ws/conversations/<id>/`.

The protocol (JSON text frames) is in docs/chat.md. The database is the source
of truth: a message is acknowledged only once it is committed, and the
broadcast that follows is a convenience; a client that was away asks for
`sync` after the last seq it saw and gets every message it missed, in order.
"""

import contextlib
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.cache import cache

from conversations import selectors, services
from conversations.errors import ReadOnlyConversation
from conversations.models import Conversation
from marketplace.errors import DomainError
from marketplace.notifications import leave_group
from marketplace.throttling import TokenBucket

logger = logging.getLogger(__name__)

# Close codes: 4403 not a member, 4429 too many connections, 4008 repeated abuse.
CLOSE_NOT_MEMBER = 4403
CLOSE_TOO_MANY = 4429
CLOSE_ABUSE = 4008
CONNECTION_COUNT_TTL = 3600


def _connections_key(user_id: int) -> str:
    return f"chat:connections:{user_id}"


class ChatConsumer(AsyncWebsocketConsumer):
    conversation: Conversation
    counted = False

    async def connect(self) -> None:
        self.user = self.scope["user"]
        self.errors = 0
        self.bucket = TokenBucket(rate=settings.CHAT_RATE_PER_SECOND, burst=settings.CHAT_RATE_BURST)
        conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        conversation = await database_sync_to_async(selectors.conversation_for)(
            user=self.user, conversation_id=conversation_id
        )
        if conversation is None:
            # Refused before accept: the handshake fails and no consumer state exists.
            await self.close(code=CLOSE_NOT_MEMBER)
            return
        if not await self._count_connection():
            await self.close(code=CLOSE_TOO_MANY)
            return
        self.conversation = conversation
        self.is_member = conversation.is_member(self.user.pk)
        self.group = services.conversation_group(conversation.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        if not self.is_member:
            await database_sync_to_async(services.conversation_staff_viewed)(
                staff=self.user, conversation_id=conversation.pk
            )

    async def _count_connection(self) -> bool:
        key = _connections_key(self.user.pk)
        await cache.aadd(key, 0, timeout=CONNECTION_COUNT_TTL)
        if await cache.aincr(key) > settings.CHAT_MAX_CONNECTIONS_PER_USER:
            await cache.adecr(key)
            return False
        self.counted = True
        return True

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await leave_group(self.channel_layer, self.group, self.channel_name)
        if self.counted:
            self.counted = False
            # ValueError: the count expired meanwhile; there is nothing to give back.
            with contextlib.suppress(ValueError):
                await cache.adecr(_connections_key(self.user.pk))

    # --- frames from the client ---------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.CHAT_MAX_FRAME_BYTES:
            await self._error("frame_too_large", f"Frames are at most {settings.CHAT_MAX_FRAME_BYTES} bytes.")
            return
        if not self.bucket.take():
            await self._error("rate_limited", "Too many frames; slow down.")
            return
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            await self._error("invalid_json", "Frames are JSON objects.")
            return
        if not isinstance(frame, dict):
            await self._error("invalid_json", "Frames are JSON objects.")
            return
        handler = {
            "send": self._on_send,
            "sync": self._on_sync,
            "typing": self._on_typing,
            "read": self._on_read,
        }.get(str(frame.get("type")))
        if handler is None:
            await self._error("unknown_type", "type is one of send, sync, typing, read.")
            return
        try:
            await handler(frame)
        except DomainError as exc:
            await self._error(exc.code, exc.detail)

    async def _on_send(self, frame: dict[str, Any]) -> None:
        body, client_msg_id = frame.get("body"), frame.get("client_msg_id")
        if not isinstance(body, str) or (client_msg_id is not None and not isinstance(client_msg_id, str)):
            await self._error("invalid_message", "send needs a string body and an optional string client_msg_id.")
            return
        if client_msg_id is not None and len(client_msg_id) > 64:
            await self._error("invalid_message", "client_msg_id is at most 64 characters.")
            return
        message, created = await database_sync_to_async(services.message_send)(
            sender=self.user, conversation_id=self.conversation.pk, body=body, client_msg_id=client_msg_id
        )
        await self._send_json(
            {
                "type": "ack",
                "client_msg_id": client_msg_id,
                "id": message.pk,
                "seq": message.seq,
                "duplicate": not created,
            }
        )

    async def _on_sync(self, frame: dict[str, Any]) -> None:
        after = frame.get("after", 0)
        if not isinstance(after, int) or after < 0:
            await self._error("invalid_sync", "sync needs after: the last seq you saw (0 for all).")
            return
        messages, has_more = await database_sync_to_async(selectors.messages_page)(
            conversation=self.conversation, after=after, limit=settings.CHAT_PAGE_SIZE
        )
        await self._send_json(
            {"type": "sync", "messages": [services.message_as_dict(m) for m in messages], "has_more": has_more}
        )

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        if self.is_member:
            await self.channel_layer.group_send(
                self.group, {"type": "chat.typing", "user_id": self.user.pk, "from": self.channel_name}
            )

    async def _on_read(self, frame: dict[str, Any]) -> None:
        up_to = frame.get("up_to")
        if not isinstance(up_to, int) or up_to < 0:
            await self._error("invalid_read", "read needs up_to: a seq.")
            return
        if not self.is_member:
            raise ReadOnlyConversation()
        marker = await database_sync_to_async(services.conversation_mark_read)(
            user=self.user, conversation_id=self.conversation.pk, up_to_seq=up_to
        )
        await self._send_json({"type": "read", "up_to": marker})

    async def _error(self, code: str, detail: str) -> None:
        self.errors += 1
        await self._send_json({"type": "error", "code": code, "detail": detail})
        if self.errors >= settings.CHAT_ERRORS_BEFORE_CLOSE:
            logger.warning("chat.closed_for_abuse", extra={"user_id": self.user.pk})
            await self.close(code=CLOSE_ABUSE)

    async def _send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))

    # --- events from the channel layer ---------------------------------------------

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self._send_json({"type": "message", "message": event["message"]})

    async def chat_typing(self, event: dict[str, Any]) -> None:
        if event["from"] != self.channel_name:
            await self._send_json({"type": "typing", "user_id": event["user_id"]})
