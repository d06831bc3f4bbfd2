"""Ranking vetted engineers for a request: filter in the database, score in the database.

Filters (never broken, whatever the widening step):
  - a current vetted record (not expired, not revoked) at or above the minimum level;
  - an active engineer account, quoting in the request's currency;
  - weekly hours available, less hours held by active engagements and by offers
    still open (pending or accepted), at least the request's hours per week;
  - fewer pending offers than MATCH_MAX_PENDING_INVITATIONS;
  - for an hourly budget, an hourly rate at most the budget (raised by the
    budget step of widening);
  - the time-zone gap (in minutes, around the clock) at most the window's slack;
  - at least one required skill, and at least one nice-to-have if any are
    named (until widening drops that);
  - not invited to this request before.

Scores, each in basis points (0-10000), combined with fixed weights:
  skill coverage 35, vetting score 25, time-zone overlap 15, rate fit 10,
  current load 10, responsiveness 5. Ties break on the lower engineer id, so
  the same data always gives the same order.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, F, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Abs, Coalesce, Greatest, Least
from django.utils import timezone

from accounts.lookups import SkillHits
from accounts.models import EngineerProfile
from accounts.timezones import utc_offset_minutes
from hiring_requests.models import (
    ACTIVE_STATUSES,
    HOLDING_STATUSES,
    BudgetKind,
    Engagement,
    EngagementStatus,
    HiringRequest,
    Invitation,
    InvitationStatus,
)
from vetting.models import Level, VettedRecord

WEIGHTS = {"skills": 35, "vetting": 25, "time_zone": 15, "rate": 10, "load": 10, "responsiveness": 5}
WORKDAY_MINUTES = 8 * 60
MAX_TZ_GAP = 12 * 60
LEVEL_ORDER = [Level.JUNIOR, Level.MID, Level.SENIOR, Level.STAFF]
# The widening steps, in order; a request at step N has had steps 1..N applied.
WIDENING_STEPS = ["drop_nice_to_haves", "relax_time_zone", "relax_budget"]


@dataclass(frozen=True)
class Criteria:
    """The filters in force for a request at its current widening step."""

    required: list[str]
    nice: list[str]
    nice_is_filter: bool
    levels: list[str]
    currency: str
    max_hourly_rate: int | None
    client_offset: int
    tz_slack: int
    hours_per_week: int


@dataclass(frozen=True)
class Candidate:
    engineer_id: int
    score_bp: int
    breakdown: dict[str, Any]


def levels_at_least(level: str) -> list[str]:
    return [str(item) for item in LEVEL_ORDER[LEVEL_ORDER.index(Level(level)) :]]


def criteria_for(request: HiringRequest, *, step: int | None = None) -> Criteria:
    step = request.widening_step if step is None else step
    slack = WORKDAY_MINUTES - request.min_overlap_hours * 60
    if step >= 2:
        slack = min(MAX_TZ_GAP, slack + settings.MATCH_TZ_RELAX_MINUTES)
    max_rate = None
    if request.budget_kind == BudgetKind.HOURLY:
        max_rate = request.budget_minor
        if step >= 3:
            max_rate = request.budget_minor * (10_000 + settings.MATCH_BUDGET_RELAX_BP) // 10_000
    return Criteria(
        required=list(request.required_skills),
        nice=list(request.nice_to_have_skills),
        nice_is_filter=step < 1 and bool(request.nice_to_have_skills),
        levels=levels_at_least(request.min_level),
        currency=request.currency,
        max_hourly_rate=max_rate,
        client_offset=utc_offset_minutes(request.time_zone),
        tz_slack=slack,
        hours_per_week=request.hours_per_week,
    )


def _count(queryset: QuerySet[Any]) -> Any:
    subquery = queryset.values("engineer").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(subquery, output_field=IntegerField()), Value(0))


def _candidates(criteria: Criteria, *, request_id: int | None) -> QuerySet[EngineerProfile]:
    now = timezone.now()
    engineer = OuterRef("user_id")
    current = VettedRecord.objects.filter(
        engineer=engineer, revoked_at=None, superseded_at=None, expires_at__gt=now
    ).order_by("-vetted_at")
    engaged = (
        Engagement.objects.filter(engineer=engineer, status=EngagementStatus.ACTIVE)
        .values("engineer")
        .annotate(hours=Sum("hours_per_week"))
        .values("hours")
    )
    # Offers still open hold hours too (hiring_requests.capacity), and pending ones are capped per engineer.
    holding = Invitation.objects.filter(
        engineer=engineer, status__in=HOLDING_STATUSES, request__status__in=ACTIVE_STATUSES
    )
    offered = holding.values("engineer").annotate(hours=Sum("offered_hours_per_week")).values("hours")
    gap = Abs(F("utc_offset_minutes") - Value(criteria.client_offset))

    queryset = EngineerProfile.objects.filter(
        Exists(current.filter(level__in=criteria.levels)),
        user__is_active=True,
        user__role="engineer",
        currency=criteria.currency,
        skills__overlap=criteria.required,
    )
    if criteria.nice_is_filter:
        queryset = queryset.filter(skills__overlap=criteria.nice)
    if criteria.max_hourly_rate is not None:
        queryset = queryset.filter(hourly_rate_minor__lte=criteria.max_hourly_rate)
    if request_id is not None:
        queryset = queryset.exclude(Exists(Invitation.objects.filter(request_id=request_id, engineer=engineer)))
    return queryset.annotate(
        tz_gap=Least(gap, Value(24 * 60) - gap),
        committed_hours=Coalesce(Subquery(engaged, output_field=IntegerField()), Value(0))
        + Coalesce(Subquery(offered, output_field=IntegerField()), Value(0)),
        pending_offers=_count(holding.filter(status=InvitationStatus.PENDING)),
    ).filter(
        tz_gap__lte=criteria.tz_slack,
        weekly_hours_available__gte=F("committed_hours") + Value(criteria.hours_per_week),
        pending_offers__lt=settings.MATCH_MAX_PENDING_INVITATIONS,
    )


def _scored(queryset: QuerySet[EngineerProfile], criteria: Criteria, *, request_id: int | None) -> Any:
    engineer = OuterRef("user_id")
    now = timezone.now()
    current = VettedRecord.objects.filter(
        engineer=engineer, revoked_at=None, superseded_at=None, expires_at__gt=now
    ).order_by("-vetted_at")
    invitations = Invitation.objects.filter(engineer=engineer)
    required_cover = SkillHits("skills", criteria.required) * Value(10_000) / Value(len(criteria.required))
    if criteria.nice:
        nice_cover = SkillHits("skills", criteria.nice) * Value(10_000) / Value(len(criteria.nice))
        skills = (Value(3) * required_cover + nice_cover) / Value(4)
    else:
        skills = required_cover
    rate: Any
    if criteria.max_hourly_rate:
        rate = (
            (Value(criteria.max_hourly_rate) - F("hourly_rate_minor")) * Value(10_000) / Value(criteria.max_hourly_rate)
        )
    else:
        rate = Value(5_000)  # a fixed total does not compare hourly rates
    return (
        queryset.annotate(
            level=Subquery(current.values("level")[:1]),
            skills_bp=skills,
            vetting_bp=Subquery(current.values("score_bp")[:1], output_field=IntegerField()),
            time_zone_bp=Greatest(Value(WORKDAY_MINUTES) - F("tz_gap"), Value(0))
            * Value(10_000)
            / Value(WORKDAY_MINUTES),
            rate_bp=rate,
            load=_count(Engagement.objects.filter(engineer=engineer, status=EngagementStatus.ACTIVE))
            + _count(invitations.filter(status=InvitationStatus.PENDING)),
            answered=_count(invitations.filter(status__in=[InvitationStatus.ACCEPTED, InvitationStatus.DECLINED])),
            expired=_count(invitations.filter(status=InvitationStatus.EXPIRED)),
        )
        .annotate(
            load_bp=Value(10_000) / (Value(1) + F("load")),
            # Two imaginary answers, one of each, so a newcomer starts at 50%.
            responsiveness_bp=(F("answered") * Value(10_000) + Value(10_000))
            / (F("answered") + F("expired") + Value(2)),
        )
        .annotate(
            total=(
                Value(WEIGHTS["skills"]) * F("skills_bp")
                + Value(WEIGHTS["vetting"]) * F("vetting_bp")
                + Value(WEIGHTS["time_zone"]) * F("time_zone_bp")
                + Value(WEIGHTS["rate"]) * F("rate_bp")
                + Value(WEIGHTS["load"]) * F("load_bp")
                + Value(WEIGHTS["responsiveness"]) * F("responsiveness_bp")
            )
            / Value(100)
        )
    )


COMPONENTS = ["skills_bp", "vetting_bp", "time_zone_bp", "rate_bp", "load_bp", "responsiveness_bp"]


def rank(criteria: Criteria, *, limit: int, request_id: int | None = None) -> list[Candidate]:
    """The best `limit` engineers for the criteria, best first, with why."""
    rows = (
        _scored(_candidates(criteria, request_id=request_id), criteria, request_id=request_id)
        .order_by("-total", "user_id")
        .values("user_id", "total", "level", "tz_gap", "hourly_rate_minor", "skills", *COMPONENTS)[:limit]
    )
    required, nice = set(criteria.required), set(criteria.nice)
    return [
        Candidate(
            engineer_id=row["user_id"],
            score_bp=row["total"],
            breakdown={
                "weights": WEIGHTS,
                "skills": {
                    "score_bp": row["skills_bp"],
                    "required_matched": sorted(required & set(row["skills"])),
                    "required_missing": sorted(required - set(row["skills"])),
                    "nice_matched": sorted(nice & set(row["skills"])),
                },
                "vetting": {"score_bp": row["vetting_bp"], "level": row["level"]},
                "time_zone": {"score_bp": row["time_zone_bp"], "gap_minutes": row["tz_gap"]},
                "rate": {"score_bp": row["rate_bp"], "hourly_rate_minor": row["hourly_rate_minor"]},
                "load": {"score_bp": row["load_bp"]},
                "responsiveness": {"score_bp": row["responsiveness_bp"]},
            },
        )
        for row in rows
    ]
