"""An offer holds its terms, vetting is checked where it matters, and an engineer's hours are real."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import EngineerProfile
from hiring_requests import errors, services
from hiring_requests.models import Engagement, HiringRequest, Invitation, InvitationStatus, RequestStatus
from tests.concurrency import race
from tests.factories import ClientFactory, InvitationFactory, StaffFactory, vetted_engineer
from tests.hiring_requests.conftest import enable_payouts, raised
from vetting.models import VettedRecord
from vetting.services import vetted_record_revoke

pytestmark = pytest.mark.django_db


def _invited(engineer, client=None, **request_fields) -> Invitation:
    request = raised(client or ClientFactory.create(), **request_fields)
    services.matching_run(request_id=request.pk)
    return request.invitations.get(engineer=engineer)


def test_the_hire_takes_the_rate_offered_not_the_profiles_rate_of_the_moment(rubric):
    engineer = vetted_engineer(hourly_rate_minor=10_900)
    invitation = _invited(engineer, budget_minor=11_000)
    EngineerProfile.objects.filter(user=engineer).update(hourly_rate_minor=25_000)  # raised after the offer

    services.invitation_accept(engineer=engineer, invitation_id=invitation.pk)
    enable_payouts(engineer)
    engagement = services.request_hire(
        client=invitation.request.client, request_id=invitation.request_id, engineer_id=engineer.pk
    )

    invitation.refresh_from_db()
    assert (invitation.offered_rate_minor, invitation.agreed_rate_minor) == (10_900, 10_900)
    assert engagement.rate_minor == 10_900


def test_a_proposed_rate_above_budget_needs_the_clients_consent_at_hire(rubric):
    engineer = vetted_engineer(hourly_rate_minor=9_000)
    invitation = _invited(engineer, budget_minor=10_000)
    services.invitation_accept(engineer=engineer, invitation_id=invitation.pk, rate_minor=12_000)
    enable_payouts(engineer)
    client, request_id = invitation.request.client, invitation.request_id

    with pytest.raises(errors.OverBudget, match=r"\$120.00 an hour, above your budget of \$100.00"):
        services.request_hire(client=client, request_id=request_id, engineer_id=engineer.pk)
    refused_status = HiringRequest.objects.get(pk=request_id).status
    engagement = services.request_hire(
        client=client, request_id=request_id, engineer_id=engineer.pk, accept_over_budget=True
    )

    assert refused_status == RequestStatus.SHORTLISTED
    assert engagement.rate_minor == 12_000


def test_the_client_sees_the_proposed_rate_on_the_shortlist(rubric, client):
    engineer = vetted_engineer(hourly_rate_minor=9_000)
    invitation = _invited(engineer)
    services.invitation_accept(engineer=engineer, invitation_id=invitation.pk, rate_minor=9_500)
    client.force_login(invitation.request.client)

    shortlist = client.get(f"/api/requests/{invitation.request_id}/shortlist").json()["items"]

    assert [(e["offered_rate_minor"], e["agreed_rate_minor"]) for e in shortlist] == [(9_000, 9_500)]


def test_revoking_vetting_withdraws_offers_and_shortlist_places_with_the_reason(
    rubric, django_capture_on_commit_callbacks
):
    engineer = vetted_engineer()
    pending = _invited(engineer)
    accepted = _invited(engineer)
    services.invitation_accept(engineer=engineer, invitation_id=accepted.pk)
    record = VettedRecord.objects.get(engineer=engineer)

    # The withdrawals follow the revocation's commit (vetting.services.vetted_record_revoke).
    with django_capture_on_commit_callbacks(execute=True):
        vetted_record_revoke(record_id=record.pk, actor=StaffFactory.create(), reason="plagiarised take-home")

    for invitation in (pending, accepted):
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.WITHDRAWN
        assert invitation.closed_reason == "the engineer's vetting was revoked: plagiarised take-home"
    with pytest.raises(errors.InvitationNotPending):
        services.invitation_accept(engineer=engineer, invitation_id=pending.pk)


def _expiring_in_half_an_hour():
    engineer = vetted_engineer()
    VettedRecord.objects.filter(engineer=engineer).update(expires_at=timezone.now() + timedelta(minutes=30))
    return engineer


def test_an_expired_engineer_cannot_accept_or_be_hired(rubric):
    engineer = _expiring_in_half_an_hour()
    to_accept = _invited(engineer)
    shortlisted = _invited(engineer)
    services.invitation_accept(engineer=engineer, invitation_id=shortlisted.pk)
    enable_payouts(engineer)

    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        with pytest.raises(errors.EngineerNotVetted):
            services.invitation_accept(engineer=engineer, invitation_id=to_accept.pk)
        with pytest.raises(errors.EngineerNotVetted):
            services.request_hire(
                client=shortlisted.request.client, request_id=shortlisted.request_id, engineer_id=engineer.pk
            )

    shortlisted.refresh_from_db()
    assert shortlisted.status == InvitationStatus.WITHDRAWN
    assert shortlisted.closed_reason == "the engineer's vetting is no longer current at the mid level"
    assert not Engagement.objects.exists()


def test_the_clock_sweep_takes_an_expired_engineer_off_open_offers(rubric):
    engineer = _expiring_in_half_an_hour()
    invitation = _invited(engineer)

    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        services.clock_sweep()

    invitation.refresh_from_db()
    assert (invitation.status, invitation.closed_reason) == ("withdrawn", "the engineer's vetting expired")


def test_an_engineer_cannot_accept_more_hours_than_they_have(rubric):
    engineer = vetted_engineer(weekly_hours_available=30)
    first, second = _invited(engineer, hours_per_week=20), None
    services.invitation_accept(engineer=engineer, invitation_id=first.pk)
    # Invited before the first acceptance filled the week: the offer exists, the hours do not.
    second_request = raised(ClientFactory.create(), hours_per_week=20)
    second = InvitationFactory.create(request=second_request, engineer=engineer, offered_hours_per_week=20)

    with pytest.raises(errors.EngineerAtCapacity, match="10 free hours a week; this request needs 20"):
        services.invitation_accept(engineer=engineer, invitation_id=second.pk)

    second.refresh_from_db()
    assert second.status == InvitationStatus.PENDING


def test_matching_does_not_offer_hours_already_held_by_open_offers(rubric):
    engineer = vetted_engineer(weekly_hours_available=40)
    offers = [_invited(engineer, hours_per_week=20) for _ in range(2)]

    third = raised(ClientFactory.create(), hours_per_week=20)
    services.matching_run(request_id=third.pk)

    assert all(o.status == InvitationStatus.PENDING for o in offers)
    assert not third.invitations.filter(engineer=engineer).exists()


def test_pending_offers_per_engineer_are_capped(rubric, settings):
    settings.MATCH_MAX_PENDING_INVITATIONS = 2
    engineer = vetted_engineer(weekly_hours_available=80)
    for _ in range(2):
        _invited(engineer, hours_per_week=5)

    third = raised(ClientFactory.create(), hours_per_week=5)
    services.matching_run(request_id=third.pk)

    assert Invitation.objects.filter(engineer=engineer, status=InvitationStatus.PENDING).count() == 2
    assert not third.invitations.filter(engineer=engineer).exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_clients_hiring_one_engineer_at_once_never_book_more_hours_than_they_have(rubric):
    engineer = vetted_engineer(weekly_hours_available=40)
    enable_payouts(engineer)
    hires = []
    for _ in range(20):
        request = raised(ClientFactory.create(), hours_per_week=20)
        HiringRequest.objects.filter(pk=request.pk).update(status=RequestStatus.SHORTLISTED)
        InvitationFactory.create(
            request=request,
            engineer=engineer,
            status=InvitationStatus.ACCEPTED,
            responded_at=timezone.now(),
            offered_hours_per_week=20,
            agreed_rate_minor=8_000,
        )
        hires.append(
            lambda request=request: services.request_hire(
                client=request.client, request_id=request.pk, engineer_id=engineer.pk
            )
        )

    outcomes = race(*hires)

    hired = [o for o in outcomes if isinstance(o, Engagement)]
    refused = {type(o).__name__ for o in outcomes if not isinstance(o, Engagement)}
    assert len(hired) == 2
    assert refused == {"EngineerAtCapacity"}
    assert sum(Engagement.objects.filter(engineer=engineer).values_list("hours_per_week", flat=True)) == 40


def test_an_engineer_can_leave_a_shortlist_and_the_client_is_told_why(rubric):
    engineer = vetted_engineer()
    invitation = _invited(engineer)
    services.invitation_accept(engineer=engineer, invitation_id=invitation.pk)

    services.invitation_withdraw(engineer=engineer, invitation_id=invitation.pk, reason="took a full-time role")

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.WITHDRAWN
    assert invitation.closed_reason == "the engineer left the shortlist: took a full-time role"
    with pytest.raises(errors.InvitationNotPending):
        services.invitation_withdraw(engineer=engineer, invitation_id=invitation.pk, reason="again")


def test_someone_elses_invitation_cannot_be_withdrawn(rubric):
    engineer, stranger = vetted_engineer(), vetted_engineer()
    invitation = _invited(engineer)
    services.invitation_accept(engineer=engineer, invitation_id=invitation.pk)

    with pytest.raises(errors.InvitationNotFound):
        services.invitation_withdraw(engineer=stranger, invitation_id=invitation.pk, reason="mine now")

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ACCEPTED


@pytest.mark.parametrize(
    "body",
    [{"rate_minor": 0}, {"rate_minor": -5}, {"rate_minor": "lots"}, {"rate_minor": 10**12}, {"surprise": 1}],
)
def test_a_garbage_proposal_is_refused_with_422_and_changes_nothing(rubric, client, body):
    engineer = vetted_engineer()
    invitation = _invited(engineer)
    client.force_login(engineer)

    response = client.post(f"/api/requests/invitations/{invitation.pk}/accept", body, content_type="application/json")

    invitation.refresh_from_db()
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert (invitation.status, invitation.agreed_rate_minor) == ("pending", None)


def test_accepting_over_the_api_with_no_body_takes_the_offered_terms(rubric, client):
    engineer = vetted_engineer(hourly_rate_minor=8_800)
    invitation = _invited(engineer)
    client.force_login(engineer)

    response = client.generic("POST", f"/api/requests/invitations/{invitation.pk}/accept")  # curl -X POST

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["agreed_rate_minor"]) == ("accepted", 8_800)


def test_a_fixed_budget_hire_compares_the_agreed_rate_over_the_expected_hours(rubric):
    engineer = vetted_engineer(hourly_rate_minor=5_000)
    invitation = _invited(engineer, budget_kind="fixed", budget_minor=100_000, hours_per_week=10, expected_weeks=1)
    services.invitation_accept(engineer=engineer, invitation_id=invitation.pk, rate_minor=1_000_000)
    enable_payouts(engineer)
    client, request_id = invitation.request.client, invitation.request_id

    with pytest.raises(errors.OverBudget, match="for 10 hours"):
        services.request_hire(client=client, request_id=request_id, engineer_id=engineer.pk)
    engagement = services.request_hire(
        client=client, request_id=request_id, engineer_id=engineer.pk, accept_over_budget=True
    )

    assert (engagement.rate_kind, engagement.rate_minor) == ("fixed", 10_000_000)


@pytest.mark.parametrize(
    "body", [{"engineer_id": 1, "accept_over_budget": "yes"}, {"engineer_id": 1, "accept_over_budget": 1}]
)
def test_consent_to_go_over_budget_must_be_a_real_boolean(rubric, client, body):
    request = raised(ClientFactory.create())
    client.force_login(request.client)

    response = client.post(f"/api/requests/{request.pk}/hire", body, content_type="application/json")

    assert response.status_code == 422
    assert not Engagement.objects.exists()


def test_closing_a_hired_request_gives_the_engineer_their_hours_back(rubric):
    engineer = vetted_engineer(weekly_hours_available=20)
    invitation = _invited(engineer, hours_per_week=20)
    services.invitation_accept(engineer=engineer, invitation_id=invitation.pk)
    enable_payouts(engineer)
    services.request_hire(client=invitation.request.client, request_id=invitation.request_id, engineer_id=engineer.pk)

    services.request_close(client=invitation.request.client, request_id=invitation.request_id)
    next_request = raised(ClientFactory.create(), hours_per_week=20)
    services.matching_run(request_id=next_request.pk)

    assert Engagement.objects.get(engineer=engineer).status == "ended"
    assert next_request.invitations.filter(engineer=engineer).exists()


def test_a_renewal_at_a_lower_level_cannot_accept_or_be_hired_above_it(rubric):
    engineer = vetted_engineer(level="senior")
    request = raised(ClientFactory.create(), min_level="senior")
    services.matching_run(request_id=request.pk)
    offer = request.invitations.get(engineer=engineer)
    VettedRecord.objects.filter(engineer=engineer).update(level="junior")  # renewed one level down

    with pytest.raises(errors.EngineerNotVetted, match="senior level"):
        services.invitation_accept(engineer=engineer, invitation_id=offer.pk)

    offer.refresh_from_db()
    assert offer.status == InvitationStatus.PENDING
