"""Every write for chat: opening a conversation, messages, read markers, staff reads.

A message is stored first and broadcast to the conversation's group after the
transaction commits; the database is the source of truth (docs/chat.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from conversations.errors import ConversationNotFound, InvalidMessage, ReadOnlyConversation
from conversations.models import Conversation, Message, MessageKind, ReadMarker
from conversations.selectors import conversation_id_between
from marketplace.notifications import notify_user
from marketplace.resilience import is_outage

if TYPE_CHECKING:
    from hiring_requests.models import HiringRequest

logger = logging.getLogger(__name__)


def storable(*texts: str) -> bool:
    """Whether PostgreSQL can store every text: no NUL character, no lone surrogate (not valid UTF-8)."""
    try:
        return all("\x00" not in text and text.encode("utf-8") is not None for text in texts)
    except UnicodeEncodeError:
        return False


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def message_as_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "seq": message.seq,
        "conversation_id": message.conversation_id,
        "sender_id": message.sender_id,
        "kind": message.kind,
        "body": message.body,
        "payload": message.payload,
        "client_msg_id": message.client_msg_id or None,
        "created_at": message.created_at.isoformat(),
    }


def _broadcast(conversation_id: int, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            conversation_group(conversation_id), {"type": "chat.message", "message": message}
        )
    except Exception as exc:
        # The message is stored; members who miss the broadcast get it on their next sync.
        if not is_outage(exc):
            raise
        logger.warning("chat.broadcast_failed", extra={"conversation_id": conversation_id, "error": repr(exc)})


def conversation_open(*, request: HiringRequest, engineer_id: int) -> Conversation:
    conversation, _ = Conversation.objects.get_or_create(
        request=request, engineer_id=engineer_id, defaults={"client_id": request.client_id}
    )
    return conversation


def _append(conversation: Conversation, **fields: Any) -> Message:
    """Take the next seq under the conversation's row lock (held by the caller) and store the message."""
    now = timezone.now()
    conversation.last_seq += 1
    message = Message.objects.create(conversation=conversation, seq=conversation.last_seq, created_at=now, **fields)
    conversation.last_message_at = now
    conversation.last_message = message
    conversation.save(update_fields=["last_seq", "last_message_at", "last_message"])
    payload = message_as_dict(message)
    transaction.on_commit(lambda: _broadcast(conversation.pk, payload))
    return message


def system_message_post(*, conversation_id: int, payload: dict[str, Any]) -> Message:
    """Record a marketplace event in the conversation (accepted, hired, funded, ...)."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        return _append(conversation, kind=MessageKind.SYSTEM, payload=payload)


def system_message_post_on_commit(*, request_id: int, engineer_id: int, payload: dict[str, Any]) -> None:
    """A system message in the conversation of request `request_id` with `engineer_id`, once the caller's
    transaction commits; nothing when the two never talked (no conversation).

    For the steps of an engagement (a milestone funded, a week charged): `robust`, so a failing post is
    logged and cannot undo the step that committed before it.
    """
    conversation_id = conversation_id_between(request_id=request_id, engineer_id=engineer_id)
    if conversation_id is not None:
        transaction.on_commit(
            lambda: system_message_post(conversation_id=conversation_id, payload=payload), robust=True
        )


def message_send(*, sender: User, conversation_id: int, body: str, client_msg_id: str | None) -> tuple[Message, bool]:
    """Store a text message, then broadcast it after commit. Returns (message, created).

    Sending again with the same `client_msg_id` returns the stored message and
    creates nothing: a client that lost the ack can simply resend. The other member
    gets one `message.created` notification per unread run, not one per message.
    Raises InvalidMessage, ConversationNotFound, ReadOnlyConversation.
    """
    if not body.strip() or len(body) > settings.CHAT_MAX_BODY_CHARS or not storable(body, client_msg_id or ""):
        raise InvalidMessage()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
        if conversation is None or not (conversation.is_member(sender.pk) or sender.is_staff):
            raise ConversationNotFound()
        if not conversation.is_member(sender.pk):
            raise ReadOnlyConversation()
        if client_msg_id:
            existing = Message.objects.filter(
                conversation=conversation, sender=sender, client_msg_id=client_msg_id
            ).first()
            if existing is not None:
                return existing, False
        message = _append(
            conversation, sender=sender, kind=MessageKind.TEXT, body=body, client_msg_id=client_msg_id or ""
        )
        # One notification per unread run: the other member hears of the first message they have not
        # read, not of every message of a lively conversation (their unread count is on the REST API).
        other = conversation.other_member(sender.pk)
        read_up_to = ReadMarker.objects.filter(conversation=conversation, user_id=other).values("last_read_seq")
        unread_before = Message.objects.filter(
            conversation=conversation,
            kind=MessageKind.TEXT,
            seq__lt=message.seq,
            seq__gt=Coalesce(Subquery(read_up_to[:1]), Value(0)),
        ).exclude(sender_id=other)
        if not unread_before.exists():  # one query: the marker is read inside it
            notify_user(
                user_id=other,
                event="message.created",
                payload={"conversation_id": conversation.pk, "seq": message.seq},
            )
    return message, True


def conversation_mark_read(*, user: User, conversation_id: int, up_to_seq: int) -> int:
    """Move the member's read marker forward (never back). Returns the marker's seq."""
    with transaction.atomic():
        conversation = Conversation.objects.filter(pk=conversation_id).first()
        if conversation is None or not conversation.is_member(user.pk):
            raise ConversationNotFound()
        target = min(up_to_seq, conversation.last_seq)
        marker, _ = ReadMarker.objects.select_for_update().get_or_create(conversation=conversation, user=user)
        if target > marker.last_read_seq:
            marker.last_read_seq = target
            marker.save(update_fields=["last_read_seq", "updated_at"])
    return marker.last_read_seq


STAFF_VIEW_EVERY = timedelta(hours=24)


def conversation_staff_viewed(*, staff: User, conversation_id: int) -> None:
    """Staff read a conversation: say so in it, once a day per staff member, so members know."""
    since = timezone.now() - STAFF_VIEW_EVERY
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        seen = Message.objects.filter(
            conversation=conversation,
            kind=MessageKind.SYSTEM,
            payload__event="staff.viewed",
            payload__staff_id=staff.pk,
            created_at__gte=since,
        ).exists()
        if not seen:
            _append(
                conversation,
                kind=MessageKind.SYSTEM,
                payload={"event": "staff.viewed", "staff_id": staff.pk, "name": staff.full_name or "Vetted staff"},
            )
