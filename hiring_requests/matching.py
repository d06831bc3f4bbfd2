"""Ranking vetted engineers for a request: filter and score in one SQL query.

What the engineer is (vetting, currency, skills, rate, time zone) filters and
scores through joins on the profile, the current vetted record and its
application. What the engineer is doing (engagements and offers: capacity, load,
responsiveness) is one correlated subquery per candidate row, `_DOING_SQL`, read
once: it gives the dynamic part of the score, or a large negative number for an
engineer who cannot take the offer (past their hours, or at the pending cap), so
those sort last and are dropped. One index probe per table per candidate, rather
than one per statistic, is what keeps ranking 100,000 engineers fast.

Filters (never broken, whatever the widening step):
  - a current vetted record (not expired, not revoked) at or above the minimum level;
  - an active engineer account, quoting in the request's currency;
  - every must-have skill (the only hard skill filter; nice-to-haves only lift the score);
  - weekly hours available, less hours held by active engagements and by offers
    still open (pending or accepted), at least the request's hours per week;
  - fewer pending offers than MATCH_MAX_PENDING_INVITATIONS;
  - for an hourly budget, an hourly rate at most the budget (raised by the
    budget step of widening);
  - the time-zone gap (in minutes, around the clock, from IANA zones at match
    time) at most the window's slack; no required overlap means any zone;
  - not invited to this request before.

Scores, each in basis points (0-10000), combined with fixed weights:
  skill coverage 35, vetting score 25, time-zone overlap 15, rate fit 10,
  current load 10, responsiveness 5.
  - Skills: a skill the engineer was vetted on counts in full, one only declared on
    the profile counts half; must-haves weigh 3, nice-to-haves 1.
  - Rate fit: within budget is full marks (cheaper is not better); above it (after
    widening) the score falls to zero at 20% over. A fixed budget is compared with
    rate x hours per week x expected weeks.
  A missing component counts as zero, so no engineer ranks on a NULL total
  (the total is computed in Python from integers, never NULL).
  Ties rotate by request: a hash of (request, engineer) orders them, so the same
  request always gives the same order and different requests spread the ties.
"""

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Abs, Coalesce, Greatest, Least
from django.utils import timezone

from accounts.models import EngineerProfile
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
from marketplace.levels import Level
from marketplace.lookups import SkillHits
from marketplace.money import format_money
from marketplace.timezones import utc_offset_minutes
from reviews.selectors import reputation_bp_of
from vetting.selectors import current_record_q

# Percent of the score. Reputation is bounded at 10: an unreviewed engineer starts at the prior (7,500 bp),
# so the most a rating can move anyone is 10 points, and newcomers are not buried (docs/matching.md).
WEIGHTS = {
    "skills": 30,
    "vetting": 20,
    "time_zone": 15,
    "rate": 10,
    "load": 10,
    "responsiveness": 5,
    "reputation": 10,
}
WORKDAY_MINUTES = 8 * 60
MAX_TZ_GAP = 12 * 60
LEVEL_ORDER = [Level.JUNIOR, Level.MID, Level.SENIOR, Level.STAFF]
# The widening steps, proposed in this order; each relaxes its own filter, so declining one
# does not hold back the next (HiringRequest.widenings_applied).
WIDENING_STEPS = ["relax_time_zone", "relax_budget"]
# Rate fit falls from full marks at the budget to zero this far above it, in basis points.
RATE_OVER_BUDGET_ZERO_BP = 2_000
# A skill the engineer only declared counts this much of a vetted one, in basis points.
DECLARED_SKILL_BP = 5_000
_ZONES_CACHE_KEY = "matching:engineer-time-zones"


@dataclass(frozen=True)
class Criteria:
    """The filters in force for a request at its current widening step."""

    required: list[str]
    nice: list[str]
    levels: list[str]
    currency: str
    max_hourly_rate: int | None
    # Hourly: the budget per hour; fixed: the total, compared with rate x hours.
    budget_kind: str
    budget_minor: int
    expected_hours: int
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


def widening_in_words(request: HiringRequest, step: int) -> str:
    """What widening `step` would change for `request`, as the client reads it."""
    what = WIDENING_STEPS[step - 1]
    if what == "relax_time_zone":
        return f"accept engineers up to {settings.MATCH_TZ_RELAX_MINUTES // 60} more hours away from your time zone"
    raised = request.budget_minor * (10_000 + settings.MATCH_BUDGET_RELAX_BP) // 10_000
    budget = format_money(request.budget_minor, request.currency)
    return f"consider hourly rates up to {format_money(raised, request.currency)} (your budget is {budget})"


def criteria_for(request: HiringRequest, *, applied: Collection[int] | None = None) -> Criteria:
    """The filters for `request` with the widening steps `applied` (default: those the client accepted)."""
    applied = request.widenings_applied() if applied is None else set(applied)
    slack = MAX_TZ_GAP if request.min_overlap_hours == 0 else WORKDAY_MINUTES - request.min_overlap_hours * 60
    if 1 in applied:
        slack = min(MAX_TZ_GAP, slack + settings.MATCH_TZ_RELAX_MINUTES)
    max_rate = None
    if request.budget_kind == BudgetKind.HOURLY:
        max_rate = request.budget_minor
        if 2 in applied:
            max_rate = request.budget_minor * (10_000 + settings.MATCH_BUDGET_RELAX_BP) // 10_000
    return Criteria(
        required=list(request.required_skills),
        nice=list(request.nice_to_have_skills),
        levels=levels_at_least(request.min_level),
        currency=request.currency,
        max_hourly_rate=max_rate,
        budget_kind=request.budget_kind,
        budget_minor=request.budget_minor,
        expected_hours=request.hours_per_week * request.expected_weeks,
        client_offset=utc_offset_minutes(request.time_zone),
        tz_slack=slack,
        hours_per_week=request.hours_per_week,
    )


def _engineer_zones() -> list[str]:
    """The IANA zones engineers work in (a short list), read at most once a minute."""
    zones = cache.get(_ZONES_CACHE_KEY)
    if zones is None:
        zones = sorted(set(EngineerProfile.objects.values_list("time_zone", flat=True).distinct()))
        cache.set(_ZONES_CACHE_KEY, zones, timeout=60)
    return list(zones)


def _zone_gaps(criteria: Criteria) -> tuple[list[str], dict[str, int]]:
    """Each engineer time zone within the request's window, with its gap to the client in minutes right now.

    Offsets come from the IANA zones at this moment (daylight saving included),
    never from a stored number; the gap is measured around the clock, so UTC+12
    and UTC-11 are an hour apart. A zone no engineer used a minute ago is picked
    up when the zone list refreshes; until then its stored offset stands in.
    Returns (the zones known, {zone in the window: gap}).
    """
    now = timezone.now()
    known, gaps = _engineer_zones(), {}
    for zone in known:
        gap = abs(utc_offset_minutes(zone, now) - criteria.client_offset)
        gap = min(gap, 24 * 60 - gap)
        if gap <= criteria.tz_slack:
            gaps[zone] = gap
    return known, gaps


def _candidates(criteria: Criteria, *, request_id: int | None) -> QuerySet[EngineerProfile]:
    """Engineers who pass the static filters: vetting, account, currency, must-haves, rate and time zone."""
    engineer = OuterRef("user_id")
    known, gaps = _zone_gaps(criteria)
    stored_gap = Abs(F("utc_offset_minutes") - Value(criteria.client_offset))

    # The engineer's one current record (a partial unique index guarantees at most one), joined once:
    # its level filters, its score and the skills it assessed are read from the same row.
    # The join condition is the rule of VettedRecord.objects.current(), from the same function.
    current = FilteredRelation(
        "user__vetted_records", condition=current_record_q(at=timezone.now(), through="user__vetted_records__")
    )
    queryset = EngineerProfile.objects.annotate(current=current).filter(
        current__level__in=criteria.levels,
        user__is_active=True,
        user__role="engineer",
        currency=criteria.currency,
        skills__contains_all=criteria.required,
        # Cannot hold the hours even with nothing else booked: no need to read their offers.
        weekly_hours_available__gte=criteria.hours_per_week,
    )
    if criteria.max_hourly_rate is not None:
        queryset = queryset.filter(hourly_rate_minor__lte=criteria.max_hourly_rate)
    if request_id is not None:
        queryset = queryset.exclude(Exists(Invitation.objects.filter(request_id=request_id, engineer=engineer)))
    return queryset.annotate(
        tz_gap=Case(
            *[When(time_zone=zone, then=Value(gap)) for zone, gap in gaps.items()],
            *[When(time_zone=zone, then=Value(MAX_TZ_GAP + 1)) for zone in known if zone not in gaps],
            default=Least(stored_gap, Value(24 * 60) - stored_gap),
            output_field=IntegerField(),
        )
    ).filter(Q(time_zone__in=list(gaps)) | ~Q(time_zone__in=known), tz_gap__lte=criteria.tz_slack)


def _coverage(skills: list[str]) -> Any:
    """Coverage of `skills` in basis points: vetted ones in full, declared-only ones at DECLARED_SKILL_BP."""
    vetted = SkillHits("vetted_skills", skills)
    declared_only = Greatest(SkillHits("skills", skills) - vetted, Value(0))
    return (vetted * Value(10_000) + declared_only * Value(DECLARED_SKILL_BP)) / Value(len(skills))


def _rate_fit(criteria: Criteria) -> Any:
    """Full marks within budget; falling to zero at RATE_OVER_BUDGET_ZERO_BP above it."""
    cost: Any = F("hourly_rate_minor")
    if criteria.budget_kind == BudgetKind.FIXED:
        cost = F("hourly_rate_minor") * Value(criteria.expected_hours)
    over_bp = Greatest((cost - Value(criteria.budget_minor)) * Value(10_000) / Value(criteria.budget_minor), Value(0))
    return Greatest(Value(10_000) - over_bp * Value(10_000) / Value(RATE_OVER_BUDGET_ZERO_BP), Value(0))


def _scored(queryset: QuerySet[EngineerProfile], criteria: Criteria, *, request_id: int | None) -> Any:
    """The static components, and `static`: their weighted sum (x100, before the division by 100)."""
    skills: Any = _coverage(criteria.required)
    if criteria.nice:
        skills = (Value(3) * skills + _coverage(criteria.nice)) / Value(4)
    # The same request always orders its ties the same way; another request orders them differently.
    # A small multiplicative hash (Lehmer's multiplier), the same in SQL and in Python (bench/matching_naive.py).
    mixed = (F("user_id") * Value(7_919) + Value((request_id or 0) * 104_729)) % Value(1_000_003)
    tie = mixed * Value(48_271) % Value(2_147_483_647)
    return (
        queryset.annotate(
            level=F("current__level"),
            vetted_skills=F("current__application__skills"),
            vetting_bp=Coalesce(F("current__score_bp"), Value(0)),
            time_zone_bp=Greatest(Value(WORKDAY_MINUTES) - F("tz_gap"), Value(0))
            * Value(10_000)
            / Value(WORKDAY_MINUTES),
            reputation_bp=reputation_bp_of("user_id"),
            tie=tie,
        )
        .annotate(skills_bp=Coalesce(skills, Value(0)), rate_bp=_rate_fit(criteria))
        .annotate(
            static=Value(WEIGHTS["skills"]) * F("skills_bp")
            + Value(WEIGHTS["vetting"]) * F("vetting_bp")
            + Value(WEIGHTS["time_zone"]) * F("time_zone_bp")
            + Value(WEIGHTS["rate"]) * F("rate_bp")
            + Value(WEIGHTS["reputation"]) * F("reputation_bp")
        )
    )


@dataclass
class _Doing:
    """What an engineer is doing now: hours held, offers pending, and how they answered offers before."""

    engaged_hours: int = 0
    engagements: int = 0
    held_hours: int = 0  # accepted and pending offers on open requests
    pending_open: int = 0  # pending offers on open requests (capped per engineer)
    pending: int = 0  # pending offers, any request (load)
    answered: int = 0
    expired: int = 0  # expired offers that reached them within working hours

    @property
    def load_bp(self) -> int:
        return 10_000 // (1 + self.engagements + self.pending)

    @property
    def responsiveness_bp(self) -> int:
        # Two imaginary answers, one of each, so a newcomer starts at 50%.
        return (self.answered * 10_000 + 10_000) // (self.answered + self.expired + 2)


def doing(engineer_ids: list[int]) -> dict[int, _Doing]:
    """Engagements and offers of `engineer_ids`, in two grouped queries (the same figures as _DOING_SQL)."""
    found = {engineer_id: _Doing() for engineer_id in engineer_ids}
    engagements = (
        Engagement.objects.filter(engineer_id__in=engineer_ids, status=EngagementStatus.ACTIVE)
        .values("engineer_id")
        .annotate(hours=Sum("hours_per_week"), n=Count("pk"))
    )
    for row in engagements:
        found[row["engineer_id"]].engaged_hours, found[row["engineer_id"]].engagements = row["hours"], row["n"]
    open_request = Q(request__status__in=ACTIVE_STATUSES)
    offers = (
        Invitation.objects.filter(engineer_id__in=engineer_ids)
        .values("engineer_id")
        .annotate(
            held_hours=Coalesce(
                Sum("offered_hours_per_week", filter=Q(status__in=HOLDING_STATUSES) & open_request), Value(0)
            ),
            pending_open=Count("pk", filter=Q(status=InvitationStatus.PENDING) & open_request),
            pending=Count("pk", filter=Q(status=InvitationStatus.PENDING)),
            answered=Count("pk", filter=Q(status__in=[InvitationStatus.ACCEPTED, InvitationStatus.DECLINED])),
            expired=Count("pk", filter=Q(status=InvitationStatus.EXPIRED, sent_off_hours=False)),
        )
    )
    for offer in offers:
        found_doing = found[offer["engineer_id"]]
        found_doing.held_hours, found_doing.pending_open = offer["held_hours"], offer["pending_open"]
        found_doing.pending, found_doing.answered, found_doing.expired = (
            offer["pending"],
            offer["answered"],
            offer["expired"],
        )
    return found


# A total for an engineer who cannot take the offer: far below any real one, so they sort last.
_CANNOT = -(10**9)
# The dynamic part of the score (x100, like `static`), or _CANNOT. One row per active engagement and per
# offer, plus a row of zeros so the sums are never NULL; CASE rather than casts keeps it valid on SQLite.
_DOING_SQL = """(
SELECT CASE
  WHEN SUM(d.held) + %(hours)s > accounts_engineerprofile.weekly_hours_available OR SUM(d.pending_open) >= %(cap)s
  THEN %(cannot)s
  ELSE %(w_load)s * (10000 / (1 + SUM(d.engagements) + SUM(d.pending)))
     + %(w_resp)s * ((SUM(d.answered) * 10000 + 10000) / (SUM(d.answered) + SUM(d.expired) + 2))
END
FROM (
  SELECT e.hours_per_week AS held, 0 AS pending_open, 1 AS engagements, 0 AS pending, 0 AS answered, 0 AS expired
  FROM hiring_requests_engagement e
  WHERE e.engineer_id = accounts_engineerprofile.user_id AND e.status = %(active)s
  UNION ALL
  SELECT CASE WHEN i.status IN (%(pending)s, %(accepted)s) AND r.status IN (%(open)s)
              THEN i.offered_hours_per_week ELSE 0 END,
         CASE WHEN i.status = %(pending)s AND r.status IN (%(open)s) THEN 1 ELSE 0 END,
         0,
         CASE WHEN i.status = %(pending)s THEN 1 ELSE 0 END,
         CASE WHEN i.status IN (%(accepted)s, %(declined)s) THEN 1 ELSE 0 END,
         CASE WHEN i.status = %(expired)s AND NOT i.sent_off_hours THEN 1 ELSE 0 END
  FROM hiring_requests_invitation i JOIN hiring_requests_hiringrequest r ON r.id = i.request_id
  WHERE i.engineer_id = accounts_engineerprofile.user_id
  UNION ALL
  SELECT 0, 0, 0, 0, 0, 0
) d
)"""


def _doing_sql(criteria: Criteria) -> RawSQL:
    """_DOING_SQL with its parameters: the statuses and numbers go in as query parameters, never as text."""
    names = {
        "hours": criteria.hours_per_week,
        "cap": settings.MATCH_MAX_PENDING_INVITATIONS,
        "cannot": _CANNOT,
        "w_load": WEIGHTS["load"],
        "w_resp": WEIGHTS["responsiveness"],
        "active": EngagementStatus.ACTIVE.value,
        "pending": InvitationStatus.PENDING.value,
        "accepted": InvitationStatus.ACCEPTED.value,
        "declined": InvitationStatus.DECLINED.value,
        "expired": InvitationStatus.EXPIRED.value,
    }
    params: list[Any] = []

    def placeholder(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "open":
            params.extend(str(status) for status in ACTIVE_STATUSES)
            return ", ".join(["%s"] * len(ACTIVE_STATUSES))
        params.append(names[key])
        return "%s"

    sql = re.sub(r"%\((\w+)\)s", placeholder, _DOING_SQL)
    return RawSQL(sql, params, output_field=IntegerField())  # noqa: S611 (constant SQL; values are parameters)


def rank(criteria: Criteria, *, limit: int, request_id: int | None = None) -> list[Candidate]:
    """The best `limit` engineers for the criteria, best first, with why.

    Ordered by total score (basis points) descending, then the tie hash, then
    user id. Engineers past their weekly hours (engagements and open offers) or
    at MATCH_MAX_PENDING_INVITATIONS pending offers are left out.
    """
    rows = list(
        _scored(_candidates(criteria, request_id=request_id), criteria, request_id=request_id)
        .annotate(total=(F("static") + _doing_sql(criteria)) / Value(100))
        .order_by(F("total").desc(), "tie", "user_id")
        .values(*STATIC_COLUMNS, "total")[:limit]
    )
    rows = [row for row in rows if row["total"] >= 0]
    now_doing = doing([row["user_id"] for row in rows])
    return [_candidate(row, now_doing[row["user_id"]], criteria) for row in rows]


STATIC_COLUMNS = [
    "user_id",
    "static",
    "tie",
    "level",
    "tz_gap",
    "hourly_rate_minor",
    "skills",
    "vetted_skills",
    "skills_bp",
    "vetting_bp",
    "time_zone_bp",
    "rate_bp",
    "reputation_bp",
]


def _candidate(row: dict[str, Any], doing: _Doing, criteria: Criteria) -> Candidate:
    required, nice = set(criteria.required), set(criteria.nice)
    return Candidate(
        engineer_id=row["user_id"],
        score_bp=row["total"],
        breakdown={
            "weights": WEIGHTS,
            "skills": {
                "score_bp": row["skills_bp"],
                "required_vetted": sorted(required & set(row["vetted_skills"])),
                "required_declared": sorted((required & set(row["skills"])) - set(row["vetted_skills"])),
                "nice_matched": sorted(nice & (set(row["skills"]) | set(row["vetted_skills"]))),
            },
            "vetting": {"score_bp": row["vetting_bp"], "level": row["level"]},
            "time_zone": {"score_bp": row["time_zone_bp"], "gap_minutes": row["tz_gap"]},
            "rate": {"score_bp": row["rate_bp"], "hourly_rate_minor": row["hourly_rate_minor"]},
            "load": {"score_bp": doing.load_bp},
            "responsiveness": {"score_bp": doing.responsiveness_bp},
            "reputation": {"score_bp": row["reputation_bp"]},
        },
    )
