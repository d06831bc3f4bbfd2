"""The same ranking as hiring_requests.matching, as a plain Python loop over every engineer.

It exists as a yardstick: the benchmark times it against the database version
(bench/bench_matching.py), and the tests use it as an independent oracle for
the filters and scores. Production code never calls it, so it lives in bench/,
out of the wheel.
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import EngineerProfile
from hiring_requests.matching import (
    DECLARED_SKILL_BP,
    RATE_OVER_BUDGET_ZERO_BP,
    WEIGHTS,
    WORKDAY_MINUTES,
    Criteria,
)
from hiring_requests.models import (
    ACTIVE_STATUSES,
    HOLDING_STATUSES,
    Engagement,
    EngagementStatus,
    Invitation,
    InvitationStatus,
)
from marketplace.timezones import utc_offset_minutes
from reviews.models import Review, ReviewerRole
from reviews.services import rating_bp
from vetting.models import VettedRecord


def load_world(now: datetime | None = None) -> dict[str, Any]:
    """Everything the loop needs, read once: profiles, current records, engagements, invitations."""
    now = now or timezone.now()
    records = {r.engineer_id: r for r in VettedRecord.objects.current(at=now).select_related("application")}
    profiles = list(
        EngineerProfile.objects.filter(user__is_active=True, user__role="engineer").values(
            "user_id", "skills", "hourly_rate_minor", "currency", "weekly_hours_available", "time_zone"
        )
    )
    offsets = {zone: utc_offset_minutes(zone, now) for zone in {p["time_zone"] for p in profiles}}
    committed: dict[int, int] = {}
    active: dict[int, int] = {}
    for engineer_id, hours in Engagement.objects.filter(status=EngagementStatus.ACTIVE).values_list(
        "engineer_id", "hours_per_week"
    ):
        committed[engineer_id] = committed.get(engineer_id, 0) + hours
        active[engineer_id] = active.get(engineer_id, 0) + 1
    invitations = list(Invitation.objects.values_list("engineer_id", "request_id", "status", "sent_off_hours"))
    # Offers that hold hours: pending or accepted, on a request still open.
    offers = Invitation.objects.filter(status__in=HOLDING_STATUSES, request__status__in=ACTIVE_STATUSES)
    pending_offers: dict[int, int] = {}
    for engineer_id, hours, status in offers.values_list("engineer_id", "offered_hours_per_week", "status"):
        committed[engineer_id] = committed.get(engineer_id, 0) + hours
        if status == InvitationStatus.PENDING:
            pending_offers[engineer_id] = pending_offers.get(engineer_id, 0) + 1
    # Ratings from the reviews themselves (not the stored Reputation): published, visible, of engineers.
    stars: dict[int, list[int]] = {}
    for subject_id, overall in Review.objects.filter(
        role=ReviewerRole.CLIENT, round__published_at__isnull=False, hidden_at=None
    ).values_list("subject_id", "overall"):
        stars.setdefault(subject_id, []).append(overall)
    reputation = {user_id: rating_bp(stars_total=sum(given), count=len(given)) for user_id, given in stars.items()}
    return {
        "reputation": reputation,
        "records": records,
        "profiles": profiles,
        "committed": committed,
        "active": active,
        "invitations": invitations,
        "pending_offers": pending_offers,
        "offsets": offsets,
    }


def rank_naive(
    criteria: Criteria, *, limit: int, request_id: int | None, world: dict[str, Any]
) -> list[tuple[int, int]]:
    """[(engineer_id, score_bp)], best first."""
    invited = {e for e, r, _, _ in world["invitations"] if r == request_id}
    pending: dict[int, int] = {}
    answered: dict[int, int] = {}
    expired: dict[int, int] = {}
    for engineer_id, _, status, off_hours in world["invitations"]:
        if status == InvitationStatus.PENDING:
            pending[engineer_id] = pending.get(engineer_id, 0) + 1
        elif status in (InvitationStatus.ACCEPTED, InvitationStatus.DECLINED):
            answered[engineer_id] = answered.get(engineer_id, 0) + 1
        elif status == InvitationStatus.EXPIRED and not off_hours:
            expired[engineer_id] = expired.get(engineer_id, 0) + 1
    required, nice = set(criteria.required), set(criteria.nice)
    scored = []
    for p in world["profiles"]:
        engineer_id = p["user_id"]
        record = world["records"].get(engineer_id)
        skills = set(p["skills"])
        gap = abs(world["offsets"][p["time_zone"]] - criteria.client_offset)
        gap = min(gap, 24 * 60 - gap)
        if (
            record is None
            or record.level not in criteria.levels
            or p["currency"] != criteria.currency
            or not required <= skills
            or (criteria.max_hourly_rate is not None and p["hourly_rate_minor"] > criteria.max_hourly_rate)
            or gap > criteria.tz_slack
            or p["weekly_hours_available"] - world["committed"].get(engineer_id, 0) < criteria.hours_per_week
            or world["pending_offers"].get(engineer_id, 0) >= settings.MATCH_MAX_PENDING_INVITATIONS
            or engineer_id in invited
        ):
            continue
        vetted = set(record.application.skills)
        skill_bp = _coverage(required, skills, vetted)
        if nice:
            skill_bp = (3 * skill_bp + _coverage(nice, skills, vetted)) // 4
        cost = p["hourly_rate_minor"] * (criteria.expected_hours if criteria.budget_kind == "fixed" else 1)
        over_bp = max((cost - criteria.budget_minor) * 10_000 // criteria.budget_minor, 0)
        rate_bp = max(10_000 - over_bp * 10_000 // RATE_OVER_BUDGET_ZERO_BP, 0)
        load = world["active"].get(engineer_id, 0) + pending.get(engineer_id, 0)
        a, x = answered.get(engineer_id, 0), expired.get(engineer_id, 0)
        components = {
            "skills": skill_bp,
            "vetting": record.score_bp,
            "time_zone": max(WORKDAY_MINUTES - gap, 0) * 10_000 // WORKDAY_MINUTES,
            "rate": rate_bp,
            "load": 10_000 // (1 + load),
            "responsiveness": (a * 10_000 + 10_000) // (a + x + 2),
            "reputation": world["reputation"].get(engineer_id, rating_bp(stars_total=0, count=0)),
        }
        total = sum(WEIGHTS[name] * value for name, value in components.items()) // 100
        tie = (engineer_id * 7_919 + (request_id or 0) * 104_729) % 1_000_003 * 48_271 % 2_147_483_647
        scored.append((engineer_id, total, tie))
    scored.sort(key=lambda item: (-item[1], item[2], item[0]))
    return [(engineer_id, total) for engineer_id, total, _ in scored[:limit]]


def _coverage(wanted: set[str], declared: set[str], vetted: set[str]) -> int:
    """Basis points: vetted skills in full, declared-only ones at DECLARED_SKILL_BP."""
    vetted_hits = len(wanted & vetted)
    declared_only = max(len(wanted & declared) - vetted_hits, 0)
    return (vetted_hits * 10_000 + declared_only * DECLARED_SKILL_BP) // len(wanted)
