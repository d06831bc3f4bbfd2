"""Chat over websockets: `/ws/conversations/<id>/`.

The protocol (JSON text frames) is in docs/chat.md. The database is the source
of truth: a message is acknowledged only once it is committed, and the
broadcast that follows is a convenience; a client that was away asks for
`sync` after the last seq it saw and gets every message it missed, in order.

Lifetime, slots, isolation and credential closes come from
`marketplace.realtime.RealtimeConsumer`.
"""

import contextlib
import logging
from datetime import datetime
from typing import Any

from channels.exceptions import StopConsumer
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from conversations import selectors, services
from conversations.errors import ReadOnlyConversation
from conversations.models import Conversation
from marketplace import metrics
from marketplace.errors import DomainError
from marketplace.realtime import CLOSE_ABUSE, CLOSE_NOT_MEMBER, RealtimeConsumer, ws_db
from marketplace.throttling import TokenBucket

logger = logging.getLogger(__name__)


class ChatConsumer(RealtimeConsumer):
    slot_kind = "chat"
    max_connections_setting = "CHAT_MAX_CONNECTIONS_PER_USER"
    conversation: Conversation

    async def open(self) -> None:
        self.user = self.scope["user"]
        self.errors = 0
        self.bucket = TokenBucket(rate=settings.CHAT_RATE_PER_SECOND, burst=settings.CHAT_RATE_BURST)
        conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        conversation = await ws_db(selectors.conversation_for)(user=self.user, conversation_id=conversation_id)
        if conversation is None:
            # Refused before accept: the handshake fails.
            await self.close(code=CLOSE_NOT_MEMBER)
            return
        self.conversation = conversation
        self.is_member = conversation.is_member(self.user.pk)
        await self.join(services.conversation_group(conversation.pk))
        await self.accept()
        if not self.is_member:
            await ws_db(services.conversation_staff_viewed)(staff=self.user, conversation_id=conversation.pk)

    # --- frames from the client ---------------------------------------------------

    async def handle(self, frame: dict[str, Any]) -> None:
        if not self.bucket.take():
            await self.refuse("rate_limited", "Too many frames; slow down.")
            return
        handler = {
            "send": self._on_send,
            "sync": self._on_sync,
            "typing": self._on_typing,
            "read": self._on_read,
        }.get(str(frame.get("type")))
        if handler is None:
            await self.refuse("unknown_type", "type is one of send, sync, typing, read.")
            return
        try:
            await handler(frame)
        except DomainError as exc:
            await self.refuse(exc.code, exc.detail)

    async def _on_send(self, frame: dict[str, Any]) -> None:
        body, client_msg_id = frame.get("body"), frame.get("client_msg_id")
        if not isinstance(body, str) or (client_msg_id is not None and not isinstance(client_msg_id, str)):
            await self.refuse("invalid_message", "send needs a string body and an optional string client_msg_id.")
            return
        if client_msg_id is not None and len(client_msg_id) > 64:
            await self.refuse("invalid_message", "client_msg_id is at most 64 characters.")
            return
        message, created = await ws_db(services.message_send)(
            sender=self.user, conversation_id=self.conversation.pk, body=body, client_msg_id=client_msg_id
        )
        await self.send_json(
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
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**62:
            await self.refuse("invalid_sync", "sync needs after: the last seq you saw (0 for all).")
            return
        messages, has_more = await ws_db(selectors.messages_page)(
            conversation=self.conversation, after=after, limit=settings.CHAT_PAGE_SIZE
        )
        await self.send_json(
            {"type": "sync", "messages": [services.message_as_dict(m) for m in messages], "has_more": has_more}
        )

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        if self.is_member:
            await self.channel_layer.group_send(
                services.conversation_group(self.conversation.pk),
                {"type": "chat.typing", "user_id": self.user.pk, "from": self.channel_name},
            )

    async def _on_read(self, frame: dict[str, Any]) -> None:
        up_to = frame.get("up_to")
        if not isinstance(up_to, int) or isinstance(up_to, bool) or not 0 <= up_to < 2**62:
            await self.refuse("invalid_read", "read needs up_to: a seq.")
            return
        if not self.is_member:
            raise ReadOnlyConversation()
        marker = await ws_db(services.conversation_mark_read)(
            user=self.user, conversation_id=self.conversation.pk, up_to_seq=up_to
        )
        await self.send_json({"type": "read", "up_to": marker})

    async def refuse(self, code: str, detail: str) -> None:
        """An error frame; after CHAT_ERRORS_BEFORE_CLOSE of them the socket is closed (4008)."""
        self.errors = getattr(self, "errors", 0) + 1
        await super().refuse(code, detail)
        if self.errors >= settings.CHAT_ERRORS_BEFORE_CLOSE:
            logger.warning("chat.closed_for_abuse", extra={"user_id": self.scope["user"].pk})
            await self.close(code=CLOSE_ABUSE)

    # --- events from the channel layer ---------------------------------------------

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", "message": event["message"]})
        sent_at = event["message"].get("created_at")
        if isinstance(sent_at, str):
            with contextlib.suppress(ValueError):
                lag = (timezone.now() - datetime.fromisoformat(sent_at)).total_seconds()
                metrics.chat_delivery.observe(max(0.0, lag))

    async def chat_typing(self, event: dict[str, Any]) -> None:
        if event["from"] != self.channel_name:
            await self.send_json({"type": "typing", "user_id": event["user_id"]})

    async def access_changed(self, event: dict[str, Any]) -> None:
        """The user's staff flag changed: a reader who may no longer read this conversation is closed (4403)."""
        if not await ws_db(_may_still_read)(self.scope["user"].pk, self.conversation.pk):
            await self.close(code=CLOSE_NOT_MEMBER)
            raise StopConsumer()


def _may_still_read(user_id: int, conversation_id: int) -> bool:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    return user is not None and selectors.conversation_for(user=user, conversation_id=conversation_id) is not None
