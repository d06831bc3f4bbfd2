"""Reads for requests: each one scoped to the client or engineer asking."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from hiring_requests.matching import widening_in_words
from hiring_requests.models import ACTIVE_STATUSES, HiringRequest, Invitation, InvitationStatus, RequestStatus
from reviews.selectors import reputation_bp_of, reputation_count_of


def requests_of(*, client: User) -> QuerySet[HiringRequest]:
    return HiringRequest.objects.filter(client=client).order_by("-created_at", "-id")


def request_of(*, client: User, request_id: int) -> HiringRequest | None:
    return HiringRequest.objects.filter(client=client, pk=request_id).first()


def matches_of(*, request: HiringRequest) -> QuerySet[Invitation]:
    return Invitation.objects.filter(request=request).order_by("wave", "rank", "id")


def shortlist_of(*, request: HiringRequest) -> QuerySet[Invitation]:
    """The engineers who accepted, first first. Their cards are read apart, a page at once (vetting's
    `engineer_cards`); a caller that shows more of the engineer joins what it shows."""
    return Invitation.objects.filter(request=request, status=InvitationStatus.ACCEPTED).order_by("responded_at", "id")


def invitations_of(*, engineer: User) -> QuerySet[Invitation]:
    """The engineer's invitations, newest first, each with its client's reputation (annotated, one query)."""
    return (
        Invitation.objects.filter(engineer=engineer)
        .select_related("request")
        .annotate(
            client_rating_bp=reputation_bp_of("request__client_id"),
            client_review_count=reputation_count_of("request__client_id", "review_count"),
            client_paid_engagements=reputation_count_of("request__client_id", "paid_engagements"),
        )
        .order_by("-sent_at", "-id")
    )


def client_has_shortlisted(*, client: User, engineer_id: int) -> bool:
    """Whether the engineer accepted an invitation to one of the client's requests."""
    return Invitation.objects.filter(
        request__client=client, engineer_id=engineer_id, status=InvitationStatus.ACCEPTED
    ).exists()


def client_shortlisted(*, client: User, engineer_ids: Iterable[int]) -> set[int]:
    """Those of `engineer_ids` who accepted an invitation to one of the client's requests."""
    accepted = Invitation.objects.filter(
        request__client=client, engineer_id__in=list(engineer_ids), status=InvitationStatus.ACCEPTED
    )
    return set(accepted.values_list("engineer_id", flat=True).distinct())


def requests_at_risk(*, now: datetime | None = None) -> QuerySet[HiringRequest]:
    """Active requests without a shortlist yet, the closest deadline first."""
    return HiringRequest.objects.filter(status__in=ACTIVE_STATUSES, shortlisted_at=None).order_by(
        "match_deadline", "id"
    )


def requests_near_deadline(*, now: datetime | None = None) -> QuerySet[HiringRequest]:
    """Requests at risk whose deadline is within MATCH_WARN_BEFORE_MINUTES and not yet missed.

    The window staff are warned in (`services.request_check_deadline`), closest deadline first.
    """
    now = now or timezone.now()
    return requests_at_risk().filter(
        breached_at=None, match_deadline__lte=now + timedelta(minutes=settings.MATCH_WARN_BEFORE_MINUTES)
    )


def _duration(seconds: int) -> str:
    minutes = max(0, seconds) // 60
    return f"{minutes // 60}h {minutes % 60:02d}m"


def clock(*, request: HiringRequest, now: datetime | None = None) -> dict[str, Any]:
    """The 8-hour promise as the client sees it (the shape of ClockOut): deadline, time left, and a summary."""
    now = now or timezone.now()
    if request.match_deadline is None:
        return {
            "as_of": now,
            "deadline": None,
            "seconds_left": None,
            "met": None,
            "breached": False,
            "summary": "Draft: not raised yet.",
        }
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
        "as_of": now,
        "deadline": request.match_deadline,
        "seconds_left": max(0, seconds_left),
        "met": met,
        "breached": request.breached_at is not None,
        "summary": line,
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


def invitations_expiring(*, now: datetime, within: timedelta) -> QuerySet[Invitation]:
    """Pending invitations that expire within `within` of `now` (not yet expired), soonest first."""
    return (
        Invitation.objects.select_related("request")
        .filter(status=InvitationStatus.PENDING, expires_at__gt=now, expires_at__lte=now + within)
        .order_by("expires_at", "pk")
    )
