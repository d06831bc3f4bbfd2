"""A property over random pools and requests: hours and terms hold whatever engineers and clients do."""

import contextlib

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import EngineerProfile
from hiring_requests import services
from hiring_requests.models import Engagement, Invitation, InvitationStatus
from marketplace.errors import DomainError
from tests.conftest import rolled_back
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import enable_payouts, raised

pytestmark = pytest.mark.django_db

pools = st.lists(
    st.fixed_dictionaries(
        {"hours": st.sampled_from([10, 20, 30, 40]), "rate": st.integers(5_000, 12_000), "skills": st.booleans()}
    ),
    min_size=1,
    max_size=6,
)
requests = st.lists(
    st.fixed_dictionaries({"hours": st.sampled_from([10, 20, 30]), "budget": st.integers(6_000, 12_000)}),
    min_size=1,
    max_size=4,
)
moves = st.lists(
    st.tuples(st.sampled_from(["accept", "propose", "hire", "hire_over"]), st.integers(0, 20), st.integers(0, 20)),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pool=pools, wanted=requests, steps=moves)
def test_nobody_is_booked_past_capacity_and_every_engagement_has_its_accepted_rate(rubric, pool, wanted, steps):
    with rolled_back():
        engineers = []
        for spec in pool:
            skills = ["asyncio", "python"] if spec["skills"] else ["python"]
            engineer = vetted_engineer(
                weekly_hours_available=spec["hours"], hourly_rate_minor=spec["rate"], skills=skills
            )
            enable_payouts(engineer)
            engineers.append(engineer)
        made = [raised(ClientFactory.create(), hours_per_week=w["hours"], budget_minor=w["budget"]) for w in wanted]
        for request in made:
            services.matching_run(request_id=request.pk)

        for action, pick, other in steps:
            offers = list(Invitation.objects.order_by("pk"))
            if not offers:
                break
            offer = offers[pick % len(offers)]
            with contextlib.suppress(DomainError):  # a refusal is fine; the invariants below judge it
                if action in ("accept", "propose"):
                    rate = offer.offered_rate_minor + 500 * (other % 4) if action == "propose" else None
                    services.invitation_accept(engineer=offer.engineer, invitation_id=offer.pk, rate_minor=rate)
                else:
                    services.request_hire(
                        client=offer.request.client,
                        request_id=offer.request_id,
                        engineer_id=offer.engineer_id,
                        accept_over_budget=action == "hire_over",
                    )

        for profile in EngineerProfile.objects.filter(user__in=engineers):
            engaged = Engagement.objects.filter(engineer=profile.user).aggregate(h=Sum("hours_per_week"))["h"] or 0
            accepted = (
                Invitation.objects.filter(engineer=profile.user, status=InvitationStatus.ACCEPTED)
                .filter(request__status__in=["open", "matching", "shortlisted"])
                .aggregate(h=Sum("offered_hours_per_week"))["h"]
                or 0
            )
            assert engaged <= profile.weekly_hours_available
            assert engaged + accepted <= profile.weekly_hours_available
        for invitation in Invitation.objects.all():
            assert {"asyncio", "python"} <= set(invitation.engineer.engineer_profile.skills)  # every must-have
        for engagement in Engagement.objects.all():
            offer = Invitation.objects.get(request=engagement.request, engineer=engagement.engineer)
            assert engagement.rate_minor == offer.agreed_rate_minor
