"""Reads for requests: each one scoped to the client or engineer asking."""

from datetime import datetime
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from hiring_requests.matching import widening_in_words
from hiring_requests.models import (
    ACTIVE_STATUSES,
    Conversation,
    HiringRequest,
    Invitation,
    InvitationStatus,
    Message,
    ReadMarker,
    RequestStatus,
)


def requests_of(*, client: User) -> QuerySet[HiringRequest]:
    return HiringRequest.objects.filter(client=client).order_by("-created_at", "-id")


def request_of(*, client: User, request_id: int) -> HiringRequest | None:
    return HiringRequest.objects.filter(client=client, pk=request_id).first()


def matches_of(*, request: HiringRequest) -> QuerySet[Invitation]:
    return Invitation.objects.filter(request=request).order_by("wave", "rank")


def shortlist_of(*, request: HiringRequest) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(request=request, status=InvitationStatus.ACCEPTED)
        .select_related("engineer__engineer_profile")
        .order_by("responded_at", "id")
    )


def invitations_of(*, engineer: User) -> QuerySet[Invitation]:
    return Invitation.objects.filter(engineer=engineer).select_related("request").order_by("-sent_at", "-id")


def client_has_shortlisted(*, client: User, engineer_id: int) -> bool:
    """Whether the engineer accepted an invitation to one of the client's requests."""
    return Invitation.objects.filter(
        request__client=client, engineer_id=engineer_id, status=InvitationStatus.ACCEPTED
    ).exists()


def requests_at_risk(*, now: datetime | None = None) -> QuerySet[HiringRequest]:
    """Active requests without a shortlist yet, the closest deadline first."""
    return HiringRequest.objects.filter(status__in=ACTIVE_STATUSES, shortlisted_at=None).order_by(
        "match_deadline", "id"
    )


def _duration(seconds: int) -> str:
    minutes = max(0, seconds) // 60
    return f"{minutes // 60}h {minutes % 60:02d}m"


def clock(*, request: HiringRequest, now: datetime | None = None) -> dict[str, Any]:
    """The 8-hour promise as the client sees it: deadline, time left, and what is happening now."""
    now = now or timezone.now()
    if request.match_deadline is None:
        return {"deadline": None, "seconds_left": None, "met": None, "breached": False, "now": "Draft: not raised yet."}
    seconds_left = int((request.match_deadline - now).total_seconds())
    met = request.shortlisted_at is not None and request.shortlisted_at <= request.match_deadline
    counts = dict.fromkeys(InvitationStatus.values, 0)
    for status in request.invitations.values_list("status", flat=True):
        counts[status] += 1
    pending, accepted = counts[InvitationStatus.PENDING], counts[InvitationStatus.ACCEPTED]
    if request.status in (RequestStatus.HIRED, RequestStatus.CLOSED, RequestStatus.CANCELLED):
        line = f"{request.get_status_display()}."
    elif pending:
        line = f"Wave {request.waves_sent}: waiting for {pending} invited engineer(s) to answer."
        if accepted:
            line += f" {accepted} engineer(s) on your shortlist."
    elif request.pool_empty_at is not None and not accepted:
        line = "Nobody matches your request as written; our staff have been told."
        if request.widening_proposed:
            line += " To find engineers, answer the widening we proposed."
        else:
            line += " Fewer must-have skills, a wider time-zone window or a higher budget would help."
    elif accepted:
        line = f"{accepted} engineer(s) on your shortlist."
    else:
        line = "Finding the best vetted engineers for you."
    if not met and request.status in ACTIVE_STATUSES:
        line += (
            f" {_duration(seconds_left)} left of the 8-hour promise."
            if seconds_left > 0
            else " The 8-hour promise was missed; our staff are on it."
        )
    return {
        "deadline": request.match_deadline,
        "seconds_left": max(0, seconds_left),
        "met": met,
        "breached": request.breached_at is not None,
        "now": line,
        "invitations": counts,
        "widening_step": request.widening_step,
        "widening_declined": list(request.widening_declined),
        "pool_empty": request.pool_empty_at is not None,
        "widening_proposed": (
            {"step": request.widening_proposed, "change": widening_in_words(request, request.widening_proposed)}
            if request.widening_proposed
            else None
        ),
    }


# --- chat ---------------------------------------------------------------------------


def conversation_for(*, user: User, conversation_id: int) -> Conversation | None:
    """The conversation if `user` may read it: its client, its engineer, or staff."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None or not (conversation.is_member(user.pk) or user.is_staff):
        return None
    return conversation


def conversations_of(*, user: User) -> QuerySet[Conversation]:
    """My conversations, latest activity first, each with its last message and my unread count."""
    # Evaluated inside the unread subquery, whose rows are messages: OuterRef is the message.
    marker = ReadMarker.objects.filter(conversation=OuterRef("conversation"), user=user).values("last_read_seq")[:1]
    unread = (
        Message.objects.filter(conversation=OuterRef("pk"), seq__gt=Coalesce(Subquery(marker), Value(0)))
        .exclude(sender=user)
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last = Message.objects.filter(conversation=OuterRef("pk")).order_by("-seq")
    return (
        Conversation.objects.filter(Q(client=user) | Q(engineer=user))
        .select_related("request")
        .annotate(
            unread=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0)),
            last_body=Subquery(last.values("body")[:1]),
            last_kind=Subquery(last.values("kind")[:1]),
            last_sender_id=Subquery(last.values("sender_id")[:1]),
        )
        .order_by(F("last_message_at").desc(nulls_last=True), "-id")
    )


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
