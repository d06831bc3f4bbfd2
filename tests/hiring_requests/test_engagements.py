"""hiring_requests.engagements: the one place the other apps ask which engagements a user has and may see."""

import pytest

from hiring_requests.engagements import (
    engagement_of,
    engagement_visible,
    engagements_of_party,
    engagements_visible_to,
    may_see,
    party_q,
    visible_q,
)
from tests.factories import ClientFactory, EngagementFactory, EngineerFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two():
    """Two engagements with no party in common."""
    return EngagementFactory.create(), EngagementFactory.create()


def test_a_party_sees_their_own_engagements_and_no_other(two):
    mine, theirs = two
    for party in (mine.client, mine.engineer):
        assert list(engagements_of_party(party)) == [mine]
        assert list(engagements_visible_to(party)) == [mine]
        assert engagement_visible(user=party, engagement_id=mine.pk)
        assert not engagement_visible(user=party, engagement_id=theirs.pk)


def test_staff_see_every_engagement_but_are_party_to_none(two):
    staff = StaffFactory.create()
    assert set(engagements_visible_to(staff)) == set(two)
    assert all(engagement_visible(user=staff, engagement_id=e.pk) for e in two)
    assert list(engagements_of_party(staff)) == []


def test_a_stranger_and_an_unknown_id_see_nothing(two):
    stranger = ClientFactory.create()
    assert list(engagements_visible_to(stranger)) == []
    assert not engagement_visible(user=stranger, engagement_id=two[0].pk)
    assert not engagement_visible(user=StaffFactory.create(), engagement_id=max(e.pk for e in two) + 1)


def test_engagement_of_is_found_only_from_the_side_asked_for(two):
    mine, _ = two
    assert engagement_of(user=mine.client, engagement_id=mine.pk, side="client") == mine
    assert engagement_of(user=mine.engineer, engagement_id=mine.pk, side="engineer") == mine
    # The right person on the wrong side, staff, and a stranger: not found.
    assert engagement_of(user=mine.client, engagement_id=mine.pk, side="engineer") is None
    assert engagement_of(user=mine.engineer, engagement_id=mine.pk, side="client") is None
    assert engagement_of(user=StaffFactory.create(), engagement_id=mine.pk, side="client") is None
    assert engagement_of(user=EngineerFactory.create(), engagement_id=mine.pk, side="engineer") is None


def test_engagement_of_returns_an_ended_engagement_for_the_caller_to_judge(two):
    mine, _ = two
    mine.status = "ended"
    mine.save(update_fields=["status"])
    assert engagement_of(user=mine.client, engagement_id=mine.pk, side="client") == mine


def test_engagement_of_refuses_a_side_that_is_no_side(two):
    mine, _ = two
    with pytest.raises(ValueError, match="side"):
        engagement_of(user=mine.client, engagement_id=mine.pk, side="staff")  # type: ignore[arg-type]


def test_the_rule_as_a_filter_on_rows_that_hang_on_an_engagement(two):
    from payments.models import Milestone
    from tests.factories import MilestoneFactory

    mine, theirs = two
    rows = {e.pk: MilestoneFactory.create(engagement=e) for e in two}
    staff = StaffFactory.create()

    def seen(user):
        return set(Milestone.objects.filter(visible_q(user, through="engagement__")).values_list("pk", flat=True))

    assert seen(mine.client) == seen(mine.engineer) == {rows[mine.pk].pk}
    assert seen(staff) == {rows[mine.pk].pk, rows[theirs.pk].pk}
    assert seen(ClientFactory.create()) == set()
    assert set(Milestone.objects.filter(party_q(staff, through="engagement__"))) == set()


def test_the_rule_on_an_engagement_already_read(two):
    mine, _ = two
    assert may_see(mine.client, mine)
    assert may_see(mine.engineer, mine)
    assert may_see(StaffFactory.create(), mine)
    assert may_see(None, mine)  # the system: a task, the sweep
    assert not may_see(ClientFactory.create(), mine)
