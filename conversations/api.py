"""Chat over REST, under /api/conversations (the websocket is /ws/conversations/<id>/, in consumers.py)."""

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from conversations import selectors, services
from conversations.errors import ConversationNotFound
from conversations.models import Conversation, Message
from conversations.schemas import (
    ConversationOut,
    MessageIn,
    MessageOut,
    MessageQuery,
    ReadIn,
    ReadOut,
)
from marketplace.auth import api_auth, current_user
from marketplace.idempotency import accepts_idempotency_key
from marketplace.throttling import FixedWindowThrottle

router = Router(tags=["conversations"], auth=api_auth)


def _conversation(request: HttpRequest, conversation_id: int) -> Conversation:
    conversation = selectors.conversation_for(user=current_user(request), conversation_id=conversation_id)
    if conversation is None:
        raise ConversationNotFound()
    return conversation


@router.get("", response=list[ConversationOut], summary="My conversations, latest first")
@paginate
def my_conversations(request: HttpRequest) -> Any:
    return selectors.conversations_of(user=current_user(request))


@router.get(
    "/{conversation_id}/messages",
    response=list[MessageOut],
    summary="Messages by seq: after=N for what you missed (oldest first), before=N for older history (newest first)",
)
@paginate
def conversation_messages(request: HttpRequest, conversation_id: int, filters: Query[MessageQuery]) -> Any:
    conversation = _conversation(request, conversation_id)
    viewer = current_user(request)
    if not conversation.is_member(viewer.pk):
        services.conversation_staff_viewed(staff=viewer, conversation_id=conversation.pk)
    return selectors.messages_of(conversation=conversation, after=filters.after, before=filters.before)


@router.post(
    "/{conversation_id}/messages",
    response={200: MessageOut, 201: MessageOut},
    # Paces ordinary use, so an outage of the cache lets messages through (marketplace.throttling).
    throttle=[FixedWindowThrottle("chat_send", "RATE_LIMIT_CHAT_REST", key="user", fail_open=True)],
    summary="Send a message (the same service as the websocket); a repeated client_msg_id returns the stored one",
)
@accepts_idempotency_key
def conversation_send(request: HttpRequest, conversation_id: int, payload: MessageIn) -> Status[Message]:
    message, created = services.message_send(
        sender=current_user(request),
        conversation_id=conversation_id,
        body=payload.body,
        client_msg_id=payload.client_msg_id,
    )
    return Status(201 if created else 200, message)


@router.post("/{conversation_id}/read", response=ReadOut, summary="Mark read up to a seq")
def conversation_read(request: HttpRequest, conversation_id: int, payload: ReadIn) -> dict[str, int]:
    marker = services.conversation_mark_read(
        user=current_user(request), conversation_id=conversation_id, up_to_seq=payload.up_to
    )
    return {"up_to": marker}
