"""Reads for chat: each one scoped to the member (or staff) asking."""

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from conversations.models import Conversation, Message, ReadMarker


def conversation_for(*, user: User, conversation_id: int) -> Conversation | None:
    """The conversation if `user` may read it: its client, its engineer, or staff."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None or not (conversation.is_member(user.pk) or user.is_staff):
        return None
    return conversation


def conversation_id_between(*, request_id: int, engineer_id: int) -> int | None:
    """The id of the conversation on request `request_id` with engineer `engineer_id`, or None. Unscoped:
    for the services that post a marketplace event into it, never for a reader."""
    return (
        Conversation.objects.filter(request_id=request_id, engineer_id=engineer_id).values_list("pk", flat=True).first()
    )


def conversations_of(*, user: User) -> QuerySet[Conversation]:
    """My conversations, latest activity first (`activity_at`: the last message, else creation), with unread counts
    and the last message (joined: `last_message`, None before the first)."""
    # Evaluated inside the unread subquery, whose rows are messages: OuterRef is the message.
    marker = ReadMarker.objects.filter(conversation=OuterRef("conversation"), user=user).values("last_read_seq")[:1]
    unread = (
        Message.objects.filter(conversation=OuterRef("pk"), seq__gt=Coalesce(Subquery(marker), Value(0)))
        .exclude(sender=user)
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Conversation.objects.filter(Q(client=user) | Q(engineer=user))
        .select_related("request", "last_message")
        .annotate(
            unread=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0)),
            # Never null, so it can be a cursor's key (marketplace.pagination).
            activity_at=Coalesce("last_message_at", "created_at"),
        )
        .order_by("-activity_at", "-id")
    )


def messages_of(*, conversation: Conversation, after: int | None, before: int | None) -> QuerySet[Message]:
    """A conversation's messages with seq > `after` and < `before` (each optional), to page with a cursor.

    Oldest first, unless `before` is given: scrolling back through history reads newest first.
    """
    queryset = Message.objects.filter(conversation=conversation)
    if after is not None:
        queryset = queryset.filter(seq__gt=after)
    if before is not None:
        return queryset.filter(seq__lt=before).order_by("-seq", "-id")
    return queryset.order_by("seq", "id")


def messages_page(
    *, conversation: Conversation, after: int | None = None, before: int | None = None, limit: int = 50
) -> tuple[list[Message], bool]:
    """Messages in seq order. `after`: the ones after that seq (sync); `before`: older history."""
    queryset = Message.objects.filter(conversation=conversation)
    if before is not None:
        page = list(queryset.filter(seq__lt=before).order_by("-seq")[: limit + 1])
        has_more = len(page) > limit
        return list(reversed(page[:limit])), has_more
    page = list(queryset.filter(seq__gt=after or 0).order_by("seq")[: limit + 1])
    return page[:limit], len(page) > limit


def unread_messages(*, user_id: int, conversation_ids: list[int], limit: int = 20) -> dict[Conversation, list[Message]]:
    """Per conversation of `user_id` among `conversation_ids`: the others' text messages after their read marker.

    Oldest first, the newest `limit` of each; conversations with nothing unread are left out.
    For the unread-chat email, which must never show a message the member has read.
    """
    unread: dict[Conversation, list[Message]] = {}
    conversations = Conversation.objects.select_related("request").filter(
        Q(client_id=user_id) | Q(engineer_id=user_id), pk__in=conversation_ids
    )
    markers = dict(
        ReadMarker.objects.filter(user_id=user_id, conversation_id__in=conversation_ids).values_list(
            "conversation_id", "last_read_seq"
        )
    )
    for conversation in conversations.order_by("pk"):
        messages = list(
            Message.objects.select_related("sender")
            .filter(conversation=conversation, kind="text", seq__gt=markers.get(conversation.pk, 0))
            .exclude(sender_id=user_id)
            .order_by("-seq")[:limit]
        )
        if messages:
            unread[conversation] = messages[::-1]
    return unread
