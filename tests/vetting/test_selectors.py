"""Reads for vetting: who may see an engineer's card, one at a time or a page at once."""

import pytest
from django.utils import timezone

from hiring_requests.models import InvitationStatus
from tests.factories import ClientFactory, EngineerFactory, InvitationFactory, StaffFactory, vetted_engineer
from vetting.selectors import engineer_card, engineer_cards

pytestmark = pytest.mark.django_db


def _shortlist(client, engineer) -> None:
    InvitationFactory.create(
        request__client=client, engineer=engineer, status=InvitationStatus.ACCEPTED, responded_at=timezone.now()
    )


def test_a_client_sees_the_cards_of_engineers_on_its_shortlists_only(rubric):
    client = ClientFactory.create()
    shortlisted, invited, stranger = vetted_engineer(), vetted_engineer(), vetted_engineer()
    _shortlist(client, shortlisted)
    InvitationFactory.create(request__client=client, engineer=invited)
    _shortlist(ClientFactory.create(), stranger)

    cards = engineer_cards(viewer=client, engineer_ids=[shortlisted.pk, invited.pk, stranger.pk])

    assert list(cards) == [shortlisted.pk]
    assert cards[shortlisted.pk] == engineer_card(viewer=client, engineer_id=shortlisted.pk)
    assert engineer_card(viewer=client, engineer_id=invited.pk) is None


def test_an_engineer_sees_their_own_card_only(rubric):
    engineer, other = vetted_engineer(), vetted_engineer()

    cards = engineer_cards(viewer=engineer, engineer_ids=[engineer.pk, other.pk])

    assert list(cards) == [engineer.pk]


def test_staff_see_every_vetted_engineers_card_and_nobody_has_one_unvetted(rubric):
    vetted, unvetted = vetted_engineer(), EngineerFactory.create()

    cards = engineer_cards(viewer=StaffFactory.create(), engineer_ids=[vetted.pk, unvetted.pk])

    assert list(cards) == [vetted.pk]
    assert cards[vetted.pk]["level"] == "senior"


def test_cards_for_many_engineers_take_two_queries(rubric, django_assert_num_queries):
    client = ClientFactory.create()
    engineers = [vetted_engineer() for _ in range(4)]
    for engineer in engineers:
        _shortlist(client, engineer)

    # which of them the client shortlisted, then their vetted records with profile and application
    with django_assert_num_queries(2):
        cards = engineer_cards(viewer=client, engineer_ids=[engineer.pk for engineer in engineers])

    assert sorted(cards) == sorted(engineer.pk for engineer in engineers)
