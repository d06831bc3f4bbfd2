"""Ranking: the filters always hold, better candidates rank higher, the database agrees with the plain loop."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.matching_naive import load_world, rank_naive
from hiring_requests import matching
from hiring_requests.models import HiringRequest, Invitation, InvitationStatus, RequestStatus
from marketplace.timezones import utc_offset_minutes
from tests.conftest import rolled_back
from tests.factories import HiringRequestFactory, HourlyEngagementFactory, InvitationFactory, vetted_engineer
from vetting.models import VettedRecord

pytestmark = pytest.mark.django_db

SKILLS = ["python", "asyncio", "django", "fastapi", "postgresql", "redis", "go"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Pacific/Auckland", "Asia/Kolkata"]
LEVELS = ["junior", "mid", "senior", "staff"]


def draft(**overrides) -> HiringRequest:
    return HiringRequestFactory.create(status=RequestStatus.DRAFT, **overrides)


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
        "expected_weeks": st.integers(1, 12),
        "applied": st.sets(st.sampled_from([1, 2])),
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
        HourlyEngagementFactory.create(engineer=engineer, hours_per_week=spec["engaged_hours"])
    return engineer.pk


def allowed(spec, wanted, applied: set[int]) -> bool:
    """Who may be invited, from the request and the pool alone (not from the code under test).

    The rules restated from docs/matching.md: a current record at or above the
    minimum level, the currency, every must-have, the hourly budget (10% more with
    widening step 2), the time-zone window (any zone at no required overlap; two
    hours wider with step 1), and the hours left in the engineer's week.
    """
    offset = utc_offset_minutes(wanted["time_zone"])
    gap = abs(utc_offset_minutes(spec["time_zone"]) - offset)
    gap = min(gap, 1440 - gap)
    slack = 720 if wanted["min_overlap_hours"] == 0 else 480 - 60 * wanted["min_overlap_hours"]
    if 1 in applied:
        slack = min(720, slack + 120)
    budget = wanted["budget_minor"] * (11_000 if 2 in applied else 10_000) // 10_000
    return (
        spec["state"] == "current"
        and LEVELS.index(spec["level"]) >= LEVELS.index(wanted["min_level"])
        and spec["currency"] == wanted["currency"]
        and set(wanted["required_skills"]) <= set(spec["skills"])
        and (wanted["budget_kind"] == "fixed" or spec["hourly_rate_minor"] <= budget)
        and gap <= slack
        and spec["weekly_hours_available"] - spec["engaged_hours"] >= wanted["hours_per_week"]
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(population=st.lists(engineers, min_size=1, max_size=12), wanted=requests)
def test_hard_filters_are_never_broken_and_everyone_eligible_is_found(rubric, population, wanted):
    applied = wanted.pop("applied")
    wanted["nice_to_have_skills"] = [s for s in wanted["nice_to_have_skills"] if s not in wanted["required_skills"]]
    wanted["currency"] = "usd"
    with rolled_back():
        by_id = {make(spec): spec for spec in population}
        request = draft(**wanted)
        criteria = matching.criteria_for(request, applied=applied)

        ranked = matching.rank(criteria, limit=100, request_id=request.pk)

        expected = {engineer_id for engineer_id, spec in by_id.items() if allowed(spec, wanted, applied)}
        assert set(ids(ranked)) == expected
        assert all(candidate.score_bp is not None for candidate in ranked)
        naive = rank_naive(criteria, limit=100, request_id=request.pk, world=load_world())
        assert [(c.engineer_id, c.score_bp) for c in ranked] == naive


BETTER_WORSE: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # Both declare the must-haves; only one was vetted on them.
    "skills": ({"skills": ["asyncio", "python"]}, {"skills": ["asyncio", "python"], "vetted_skills": ["python"]}),
    "vetting": ({"score_bp": 9_000}, {"score_bp": 8_000}),
    "time_zone": ({"time_zone": "Europe/London"}, {"time_zone": "Europe/Athens"}),
}


@pytest.mark.parametrize("component", list(BETTER_WORSE))
def test_a_strictly_better_candidate_never_ranks_lower(rubric, component):
    better_fields, worse_fields = BETTER_WORSE[component]
    worse = vetted_engineer(**worse_fields)
    better = vetted_engineer(**better_fields)
    request = draft()

    ranked = ids(matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk))

    assert ranked == [better.pk, worse.pk]


def test_must_haves_are_the_only_hard_skill_filter_and_nice_to_haves_only_lift(rubric):
    all_must = vetted_engineer(skills=["aws", "postgresql", "python"])
    one_must_and_nice = vetted_engineer(skills=["kubernetes", "python"])
    all_must_and_nice = vetted_engineer(skills=["aws", "kubernetes", "postgresql", "python"])
    request = draft(required_skills=["aws", "postgresql", "python"], nice_to_have_skills=["kubernetes"])

    ranked = ids(matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk))

    assert ranked == [all_must_and_nice.pk, all_must.pk]
    assert one_must_and_nice.pk not in ranked


def test_a_skill_only_declared_counts_half_of_a_vetted_one(rubric):
    engineer = vetted_engineer(skills=["go", "python"], vetted_skills=["python"])
    request = draft(required_skills=["go"])

    (candidate,) = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert candidate.engineer_id == engineer.pk
    assert candidate.breakdown["skills"]["score_bp"] == 5_000
    assert candidate.breakdown["skills"]["required_declared"] == ["go"]
    assert candidate.breakdown["skills"]["required_vetted"] == []


def test_rate_fit_rewards_being_within_budget_not_being_cheap(rubric):
    free, dearer = vetted_engineer(hourly_rate_minor=1), vetted_engineer(hourly_rate_minor=9_900)
    request = draft(budget_minor=10_000)

    ranked = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert {c.engineer_id: c.breakdown["rate"]["score_bp"] for c in ranked} == {free.pk: 10_000, dearer.pk: 10_000}


def test_above_budget_after_widening_the_rate_score_falls(rubric):
    within, over = vetted_engineer(hourly_rate_minor=10_000), vetted_engineer(hourly_rate_minor=10_500)
    request = draft(budget_minor=10_000)

    ranked = matching.rank(matching.criteria_for(request, applied={1, 2}), limit=10, request_id=request.pk)

    scores = {c.engineer_id: c.breakdown["rate"]["score_bp"] for c in ranked}
    assert scores == {within.pk: 10_000, over.pk: 7_500}  # 5% over, on a scale that ends at 20% over


def test_a_fixed_budget_is_compared_with_rate_times_expected_hours(rubric):
    fits = vetted_engineer(hourly_rate_minor=5_000)  # 50.00 x 20 h x 4 weeks = 4,000.00
    over = vetted_engineer(hourly_rate_minor=5_500)  # 4,400.00: 10% over
    request = draft(budget_kind="fixed", budget_minor=400_000, hours_per_week=20, expected_weeks=4)

    ranked = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    scores = {c.engineer_id: c.breakdown["rate"]["score_bp"] for c in ranked}
    assert scores == {fits.pk: 10_000, over.pk: 5_000}


def test_no_required_overlap_means_any_time_zone(rubric):
    far = vetted_engineer(time_zone="Pacific/Auckland")
    request = draft(time_zone="Europe/London", min_overlap_hours=0)

    ranked = ids(matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk))

    assert ranked == [far.pk]


def test_time_zones_are_read_at_match_time_not_from_the_stored_offset(rubric):
    from accounts.models import EngineerProfile

    london = vetted_engineer(time_zone="Europe/London")
    EngineerProfile.objects.filter(user=london).update(utc_offset_minutes=-600)  # stale, far from London
    request = draft(time_zone="Europe/London", min_overlap_hours=8)

    ranked = ids(matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk))

    assert ranked == [london.pk]


def test_current_load_and_responsiveness_count(rubric):
    busy, unresponsive, fresh = vetted_engineer(), vetted_engineer(), vetted_engineer()
    elsewhere = draft()
    InvitationFactory.create(request=elsewhere, engineer=busy)
    InvitationFactory.create(
        request=draft(),
        engineer=unresponsive,
        status=InvitationStatus.EXPIRED,
        expires_at=timezone.now() - timedelta(hours=1),
    )
    request = draft()

    ranked = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert ids(ranked) == [fresh.pk, unresponsive.pk, busy.pk]
    assert ranked[2].breakdown["load"]["score_bp"] == 5_000
    assert ranked[1].breakdown["responsiveness"]["score_bp"] == 3_333


def test_ties_are_stable_for_a_request_and_rotate_across_requests(rubric):
    twins = {vetted_engineer().pk for _ in range(4)}
    requests = [draft() for _ in range(8)]

    orders = [ids(matching.rank(matching.criteria_for(r), limit=10, request_id=r.pk)) for r in requests]
    again = ids(matching.rank(matching.criteria_for(requests[0]), limit=10, request_id=requests[0].pk))

    assert again == orders[0]
    assert all(set(order) == twins for order in orders)
    assert len({order[0] for order in orders}) > 1  # not always the oldest account first


def test_the_breakdown_explains_the_score(rubric):
    engineer = vetted_engineer(
        skills=["asyncio", "python", "redis"],
        vetted_skills=["python", "redis"],
        score_bp=8_000,
        hourly_rate_minor=7_500,
    )
    request = draft(nice_to_have_skills=["redis"], budget_minor=10_000)

    (candidate,) = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    b = candidate.breakdown
    assert candidate.engineer_id == engineer.pk
    assert b["weights"] == {
        "skills": 30,
        "vetting": 20,
        "time_zone": 15,
        "rate": 10,
        "load": 10,
        "responsiveness": 5,
        "reputation": 10,
    }
    # Must-haves: python vetted (10000), asyncio declared (5000) -> 7500; nice: redis vetted -> 10000.
    assert b["skills"] == {
        "score_bp": (3 * 7_500 + 10_000) // 4,
        "required_vetted": ["python"],
        "required_declared": ["asyncio"],
        "nice_matched": ["redis"],
    }
    assert b["vetting"] == {"score_bp": 8_000, "level": "senior"}
    assert b["rate"] == {"score_bp": 10_000, "hourly_rate_minor": 7_500}
    assert b["reputation"] == {"score_bp": 7_500}  # no reviews yet: the prior, 4 stars
    expected = (
        30 * b["skills"]["score_bp"]
        + 20 * 8_000
        + 15 * b["time_zone"]["score_bp"]
        + 10 * 10_000
        + 10 * 10_000
        + 5 * 5_000
        + 10 * 7_500
    ) // 100
    assert candidate.score_bp == expected


def test_the_breakdown_names_only_required_skills_as_declared_and_a_nice_to_have_only_declared_as_matched(rubric):
    vetted_engineer(skills=["python", "asyncio", "go", "redis"], vetted_skills=["python"])
    request = draft(required_skills=["python", "asyncio"], nice_to_have_skills=["redis"])

    (candidate,) = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    skills = candidate.breakdown["skills"]
    assert (skills["required_vetted"], skills["required_declared"], skills["nice_matched"]) == (
        ["python"],
        ["asyncio"],
        ["redis"],
    )


def test_the_budget_step_raises_the_hourly_ceiling_rounded_down_to_a_whole_minor_unit(settings):
    settings.MATCH_BUDGET_RELAX_BP = 1_000
    request = draft(budget_kind="hourly", budget_minor=10_005)

    assert matching.criteria_for(request, applied=set()).max_hourly_rate == 10_005
    assert matching.criteria_for(request, applied={2}).max_hourly_rate == 11_005  # not 11,005.5


def test_the_engineers_time_zones_are_read_at_most_once_a_minute(rubric, django_assert_num_queries):
    vetted_engineer(time_zone="Asia/Tokyo")
    first = matching._engineer_zones()
    vetted_engineer(time_zone="Europe/London")

    with django_assert_num_queries(0):
        again = matching._engineer_zones()

    assert again == first == ["Asia/Tokyo"]


def test_the_gap_is_measured_from_the_clients_own_zone_east_of_utc_too(rubric):
    near = vetted_engineer(time_zone="Asia/Kolkata")
    request = draft(time_zone="Asia/Kolkata", min_overlap_hours=4)

    (candidate,) = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert candidate.engineer_id == near.pk
    assert candidate.breakdown["time_zone"] == {"score_bp": 10_000, "gap_minutes": 0}


def test_the_gap_is_measured_around_the_clock(rubric):
    far_west = vetted_engineer(time_zone="Etc/GMT+11")  # UTC-11
    request = draft(time_zone="Etc/GMT-12", min_overlap_hours=4)  # UTC+12: 23 hours ahead, one hour around

    (candidate,) = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert (candidate.engineer_id, candidate.breakdown["time_zone"]["gap_minutes"]) == (far_west.pk, 60)


def test_a_zone_newer_than_the_cached_list_is_matched_on_its_stored_offset(rubric):
    vetted_engineer(time_zone="America/New_York")
    matching._engineer_zones()  # the list as of a moment ago: New York only
    newcomer = vetted_engineer(time_zone="Asia/Kolkata")
    request = draft(time_zone="Asia/Kolkata", min_overlap_hours=4)

    (candidate,) = matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)

    assert (candidate.engineer_id, candidate.breakdown["time_zone"]["gap_minutes"]) == (newcomer.pk, 0)


def test_an_engineer_whose_only_vetted_record_expired_is_not_matched(rubric):
    current = vetted_engineer()
    vetted_engineer(vetted_days_ago=400)
    request = draft()

    assert ids(matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)) == [current.pk]


def test_each_widening_step_is_put_in_words_for_the_client(settings):
    settings.MATCH_TZ_RELAX_MINUTES = 180
    settings.MATCH_BUDGET_RELAX_BP = 1_000
    request = draft(budget_kind="hourly", budget_minor=10_005, currency="usd")

    assert matching.widening_in_words(request, 1) == "accept engineers up to 3 more hours away from your time zone"
    # 10% over $100.05 is $110.055: rounded down to a whole cent, like every amount offered to the client.
    assert matching.widening_in_words(request, 2) == "consider hourly rates up to $110.05 (your budget is $100.05)"


def test_an_engineer_is_never_invited_twice_to_one_request(rubric):
    engineer = vetted_engineer()
    request = draft()
    InvitationFactory.create(request=request, engineer=engineer)

    with pytest.raises(IntegrityError), transaction.atomic():
        InvitationFactory.create(request=request, engineer=engineer)

    assert Invitation.objects.filter(request=request).count() == 1


def test_the_card_shows_which_skills_were_vetted_and_which_only_declared(rubric):
    from vetting.selectors import engineer_card

    engineer = vetted_engineer(skills=["go", "python", "rust"], vetted_skills=["python"])

    card = engineer_card(viewer=engineer, engineer_id=engineer.pk)

    assert card is not None
    assert (card["vetted_skills"], card["declared_skills"]) == (["python"], ["go", "rust"])
