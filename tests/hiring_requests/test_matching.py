"""Ranking: the filters always hold, better candidates rank higher, the database agrees with the plain loop."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.timezones import utc_offset_minutes
from hiring_requests import matching
from hiring_requests.matching_naive import load_world, rank_naive
from hiring_requests.models import Engagement, HiringRequest, Invitation, InvitationStatus
from tests.conftest import rolled_back
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import request_fields
from vetting.models import VettedRecord

pytestmark = pytest.mark.django_db

SKILLS = ["python", "asyncio", "django", "fastapi", "postgresql", "redis", "go"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Pacific/Auckland", "Asia/Kolkata"]
LEVELS = ["junior", "mid", "senior", "staff"]


def draft(**overrides) -> HiringRequest:
    return HiringRequest.objects.create(client=ClientFactory.create(), **request_fields(**overrides))


def ids(candidates) -> list[int]:
    return [c.engineer_id for c in candidates]


engineers = st.fixed_dictionaries(
    {
        "skills": st.lists(st.sampled_from(SKILLS), min_size=1, max_size=4, unique=True),
        "level": st.sampled_from(LEVELS),
        "score_bp": st.integers(4_000, 10_000),
        "hourly_rate_minor": st.integers(3_000, 15_000),
        "currency": st.sampled_from(["usd", "eur"]),
        "weekly_hours_available": st.integers(0, 40),
        "time_zone": st.sampled_from(ZONES),
        "state": st.sampled_from(["current", "current", "current", "expired", "revoked", "inactive"]),
        "engaged_hours": st.sampled_from([0, 0, 10, 30]),
    }
)
requests = st.fixed_dictionaries(
    {
        "required_skills": st.lists(st.sampled_from(SKILLS), min_size=1, max_size=3, unique=True),
        "nice_to_have_skills": st.lists(st.sampled_from(SKILLS), max_size=2, unique=True),
        "min_level": st.sampled_from(LEVELS),
        "budget_kind": st.sampled_from(["hourly", "fixed"]),
        "budget_minor": st.integers(4_000, 14_000),
        "hours_per_week": st.integers(5, 30),
        "time_zone": st.sampled_from(ZONES),
        "min_overlap_hours": st.integers(0, 8),
        "step": st.integers(0, 3),
    }
)


def make(spec) -> int:
    engineer = vetted_engineer(
        level=spec["level"],
        score_bp=spec["score_bp"],
        skills=spec["skills"],
        hourly_rate_minor=spec["hourly_rate_minor"],
        currency=spec["currency"],
        weekly_hours_available=spec["weekly_hours_available"],
        time_zone=spec["time_zone"],
        is_active=spec["state"] != "inactive",
    )
    record = VettedRecord.objects.get(engineer=engineer)
    if spec["state"] == "expired":
        VettedRecord.objects.filter(pk=record.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    if spec["state"] == "revoked":
        VettedRecord.objects.filter(pk=record.pk).update(revoked_at=timezone.now(), revoke_reason="test")
    if spec["engaged_hours"]:
        other = draft()
        Engagement.objects.create(
            request=other,
            client=other.client,
            engineer=engineer,
            rate_kind="hourly",
            rate_minor=5_000,
            currency="usd",
            hours_per_week=spec["engaged_hours"],
        )
    return engineer.pk


def allowed(spec, criteria: matching.Criteria) -> bool:
    """The filters, restated from the specification, independent of both implementations."""
    gap = abs(utc_offset_minutes(spec["time_zone"]) - criteria.client_offset)
    gap = min(gap, 1440 - gap)
    return (
        spec["state"] == "current"
        and spec["level"] in criteria.levels
        and spec["currency"] == criteria.currency
        and bool(set(spec["skills"]) & set(criteria.required))
        and (not criteria.nice_is_filter or bool(set(spec["skills"]) & set(criteria.nice)))
        and (criteria.max_hourly_rate is None or spec["hourly_rate_minor"] <= criteria.max_hourly_rate)
        and gap <= criteria.tz_slack
        and spec["weekly_hours_available"] - spec["engaged_hours"] >= criteria.hours_per_week
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(population=st.lists(engineers, min_size=1, max_size=12), wanted=requests)
def test_hard_filters_are_never_broken_and_everyone_eligible_is_found(rubric, population, wanted):
    step = wanted.pop("step")
    wanted["nice_to_have_skills"] = [s for s in wanted["nice_to_have_skills"] if s not in wanted["required_skills"]]
    with rolled_back():
        by_id = {make(spec): spec for spec in population}
        request = draft(**wanted)
        criteria = matching.criteria_for(request, step=step)

        ranked = matching.rank(criteria, limit=100, request_id=request.pk)

        expected = {engineer_id for engineer_id, spec in by_id.items() if allowed(spec, criteria)}
        assert set(ids(ranked)) == expected
        naive = rank_naive(criteria, limit=100, request_id=request.pk, world=load_world())
        assert [(c.engineer_id, c.score_bp) for c in ranked] == naive


BETTER_WORSE: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "skills": ({"skills": ["python", "asyncio"]}, {"skills": ["python"]}),
    "vetting": ({"score_bp": 9_000}, {"score_bp": 8_000}),
    "time_zone": ({"time_zone": "Europe/London"}, {"time_zone": "Europe/Athens"}),
    "rate": ({"hourly_rate_minor": 6_000}, {"hourly_rate_minor": 9_000}),
}


@pytest.mark.parametrize("component", list(BETTER_WORSE))
def test_a_strictly_better_candidate_never_ranks_lower(rubric, component):
    better_fields, worse_fields = BETTER_WORSE[component]
    # The worse one is created first, so a tie would put it first (lower id).
    worse = vetted_engineer(**worse_fields)
    better = vetted_engineer(**better_fields)
    request = draft()

    ranked = ids(matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk))

    assert ranked == [better.pk, worse.pk]


def test_current_load_and_responsiveness_count(rubric):
    busy, unresponsive, fresh = vetted_engineer(), vetted_engineer(), vetted_engineer()
    elsewhere = draft()
    Invitation.objects.create(
        request=elsewhere, engineer=busy, wave=1, rank=1, score_bp=1, breakdown={},
        expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    Invitation.objects.create(
        request=draft(), engineer=unresponsive, wave=1, rank=1, score_bp=1, breakdown={},
        status=InvitationStatus.EXPIRED, expires_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    request = draft()

    ranked = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert ids(ranked) == [fresh.pk, unresponsive.pk, busy.pk]
    assert ranked[2].breakdown["load"]["score_bp"] == 5_000
    assert ranked[1].breakdown["responsiveness"]["score_bp"] == 3_333


def test_ranking_is_deterministic_and_ties_break_on_id(rubric):
    twins = [vetted_engineer() for _ in range(4)]
    request = draft()
    criteria = matching.criteria_for(request)

    first = matching.rank(criteria, limit=10, request_id=request.pk)
    second = matching.rank(criteria, limit=10, request_id=request.pk)

    assert ids(first) == ids(second) == [e.pk for e in twins]


def test_the_breakdown_explains_the_score(rubric):
    engineer = vetted_engineer(skills=["python", "redis"], score_bp=8_000, hourly_rate_minor=7_500)
    request = draft(nice_to_have_skills=["redis"], budget_minor=10_000)

    (candidate,) = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    b = candidate.breakdown
    assert candidate.engineer_id == engineer.pk
    assert b["skills"] == {
        "score_bp": 6_250,
        "required_matched": ["python"],
        "required_missing": ["asyncio"],
        "nice_matched": ["redis"],
    }
    assert b["vetting"] == {"score_bp": 8_000, "level": "senior"}
    assert b["rate"] == {"score_bp": 2_500, "hourly_rate_minor": 7_500}
    expected = (35 * 6_250 + 25 * 8_000 + 15 * b["time_zone"]["score_bp"] + 10 * 2_500 + 10 * 10_000 + 5 * 5_000) // 100
    assert candidate.score_bp == expected


def test_an_engineer_is_never_invited_twice_to_one_request(rubric):
    engineer = vetted_engineer()
    request = draft()
    fields = {"wave": 1, "rank": 1, "score_bp": 1, "breakdown": {}, "expires_at": timezone.now()}
    Invitation.objects.create(request=request, engineer=engineer, **fields)

    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(request=request, engineer=engineer, **fields)

    assert Invitation.objects.filter(request=request).count() == 1
