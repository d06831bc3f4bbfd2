"""The clock with moved time: replacements at once, night-time offers wait for the morning, staff can act."""

import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from hiring_requests import errors, services
from hiring_requests.models import HiringRequest, Invitation, InvitationStatus, RequestEvent
from tests.factories import ClientFactory, InvitationFactory, StaffFactory, vetted_engineer
from tests.hiring_requests.conftest import raised

pytestmark = pytest.mark.django_db

MONDAY_NOON_UTC = "2026-11-02 12:00Z"


def test_a_decline_that_makes_the_target_unreachable_is_replaced_at_once(rubric, settings):
    settings.MATCH_WAVE_SIZE, settings.MATCH_SHORTLIST_TARGET = 3, 3
    engineers = [vetted_engineer(time_zone="Europe/London") for _ in range(5)]
    with time_machine.travel(MONDAY_NOON_UTC, tick=False):
        request = raised(ClientFactory.create())
        services.matching_run(request_id=request.pk)
        first_wave = list(request.invitations.all())
        services.invitation_decline(engineer=first_wave[0].engineer, invitation_id=first_wave[0].pk, reason="busy")
        replaced = services.matching_run(request_id=request.pk)  # what the task enqueued on the decline does

    assert len(first_wave) == 3
    assert replaced == 1
    assert request.invitations.filter(status=InvitationStatus.PENDING).count() == 3
    assert {i.engineer_id for i in request.invitations.all()} <= {e.pk for e in engineers}


def test_an_offer_sent_at_night_runs_from_the_engineers_next_morning(rubric, settings):
    settings.MATCH_INVITATION_TTL_MINUTES = 120
    engineer = vetted_engineer(time_zone="Asia/Tokyo", skills=["asyncio", "python"])
    with time_machine.travel(MONDAY_NOON_UTC, tick=False):  # 21:00 in Tokyo
        request = raised(ClientFactory.create(), min_overlap_hours=0)
        services.matching_run(request_id=request.pk)

    offer = Invitation.objects.get(engineer=engineer)
    assert offer.sent_off_hours is True
    # The next 09:00 in Tokyo is 00:00 UTC on Tuesday; two hours to answer from then.
    assert offer.expires_at.isoformat() == "2026-11-03T02:00:00+00:00"


def test_a_night_time_offer_that_expires_does_not_count_against_the_engineer(rubric):
    from hiring_requests import matching

    sleeper, awake = vetted_engineer(), vetted_engineer()
    for engineer, off_hours in ((sleeper, True), (awake, False)):
        InvitationFactory.create(
            engineer=engineer,
            status=InvitationStatus.EXPIRED,
            expires_at=timezone.now() - timedelta(hours=1),
            sent_off_hours=off_hours,
        )
    request = raised(ClientFactory.create())

    ranked = {
        c.engineer_id: c.breakdown["responsiveness"]["score_bp"]
        for c in matching.rank(matching.criteria_for(request), limit=10, request_id=request.pk)
    }

    assert ranked == {sleeper.pk: 5_000, awake.pk: 3_333}


def test_staff_extend_a_deadline_with_a_reason_on_record(rubric):
    request = raised(ClientFactory.create())
    before = HiringRequest.objects.get(pk=request.pk).match_deadline
    assert before is not None

    services.request_extend_deadline(
        staff=StaffFactory.create(), request_id=request.pk, hours=4, reason="client asked for a rare skill"
    )

    request.refresh_from_db()
    assert request.match_deadline == before + timedelta(hours=4)
    event = RequestEvent.objects.get(request=request, kind="deadline_extended")
    assert (event.data["hours"], event.data["reason"]) == (4, "client asked for a rare skill")


@pytest.mark.parametrize(("hours", "reason"), [(0, "why"), (49, "why"), (4, "  ")])
def test_a_deadline_extension_needs_sane_hours_and_a_reason(rubric, hours, reason):
    request = raised(ClientFactory.create())
    before = HiringRequest.objects.get(pk=request.pk).match_deadline

    with pytest.raises(errors.InvalidRequest):
        services.request_extend_deadline(staff=StaffFactory.create(), request_id=request.pk, hours=hours, reason=reason)

    assert HiringRequest.objects.get(pk=request.pk).match_deadline == before


def test_staff_invite_an_engineer_by_hand_within_the_same_rules(rubric):
    request = raised(ClientFactory.create())
    chosen = vetted_engineer(skills=["rust"])  # matching would never pick them: no must-haves
    staff = StaffFactory.create()

    offer = services.invitation_by_hand(staff=staff, request_id=request.pk, engineer_id=chosen.pk)
    with pytest.raises(errors.RequestStateConflict):
        services.invitation_by_hand(staff=staff, request_id=request.pk, engineer_id=chosen.pk)

    assert (offer.status, offer.offered_hours_per_week) == ("pending", request.hours_per_week)
    assert offer.breakdown == {"by_hand": {"staff_id": staff.pk}}


def test_staff_can_rematch_and_invite_by_hand_from_the_admin(rubric, client):
    request = raised(ClientFactory.create())
    chosen = vetted_engineer()
    client.force_login(StaffFactory.create(is_superuser=True))
    changelist = "/admin/hiring_requests/hiringrequest/"

    asked = client.post(changelist, {"action": "invite_by_hand", "_selected_action": [request.pk]})
    client.post(
        changelist,
        {"action": "invite_by_hand", "_selected_action": [request.pk], "apply": "1", "email": chosen.email},
    )

    assert b"The engineer&#x27;s email" in asked.content
    assert Invitation.objects.filter(request=request, engineer=chosen).exists()


def test_at_risk_and_breach_log_lines_name_the_request(rubric, caplog):
    request = raised(ClientFactory.create())
    HiringRequest.objects.filter(pk=request.pk).update(match_deadline=timezone.now() - timedelta(minutes=1))

    with caplog.at_level(logging.WARNING):
        services.clock_sweep()

    named = {r.message: getattr(r, "hiring_request_id", None) for r in caplog.records}
    assert named["request.at_risk"] == request.pk
    assert named["request.deadline_breached"] == request.pk


def test_an_offer_sent_near_the_end_of_the_day_runs_on_into_the_next_working_morning(rubric, settings):
    settings.MATCH_INVITATION_TTL_MINUTES = 120
    engineer = vetted_engineer(time_zone="Europe/Berlin")
    with time_machine.travel("2026-11-06 15:59Z", tick=False):  # Friday 16:59 in Berlin
        request = raised(ClientFactory.create(), min_overlap_hours=0)
        services.matching_run(request_id=request.pk)

    offer = Invitation.objects.get(engineer=engineer)
    assert offer.sent_off_hours is False
    # One minute on Friday, 119 from Monday 09:00 Berlin (08:00 UTC): 09:59 UTC on Monday.
    assert offer.expires_at.isoformat() == "2026-11-09T09:59:00+00:00"


def test_an_emptied_shortlist_reopens_the_clock(rubric):
    engineer = vetted_engineer()
    request = raised(ClientFactory.create())
    services.matching_run(request_id=request.pk)
    offer = request.invitations.get(engineer=engineer)
    services.invitation_accept(engineer=engineer, invitation_id=offer.pk)

    services.invitation_withdraw(engineer=engineer, invitation_id=offer.pk, reason="took another job")

    request.refresh_from_db()
    assert (request.status, request.shortlisted_at) == ("matching", None)
