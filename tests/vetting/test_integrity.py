"""Vetting a client can trust: nobody vets themselves, four eyes, scores keep their history, no dodging cooldowns."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import StaffFactory
from tests.vetting.conftest import in_status, score_all, submit, to_interview
from vetting import errors, services
from vetting.models import Application, ApplicationStatus, Score, VettedRecord

pytestmark = pytest.mark.django_db

S = ApplicationStatus


@pytest.fixture
def staff_engineer(db):
    """Someone who is both staff and an engineer."""
    from tests.factories import EngineerProfileFactory

    person = StaffFactory.create(role="engineer")
    EngineerProfileFactory.create(user=person)
    return person


def test_nobody_moves_their_own_application(rubric, staff_engineer):
    application = submit(staff_engineer)

    with pytest.raises(errors.OwnVetting):
        services.application_start_screening(application_id=application.pk, actor=staff_engineer)

    application.refresh_from_db()
    assert application.status == S.SUBMITTED
    assert application.events.count() == 1


def test_nobody_interviews_scores_or_approves_themselves(rubric, staff_engineer, staff):
    application = submit(staff_engineer)
    services.application_start_screening(application_id=application.pk, actor=staff)

    with pytest.raises(errors.OwnVetting):
        services.application_start_interview(application_id=application.pk, actor=staff, interviewer=staff_engineer)
    to_score = services.application_start_interview(application_id=application.pk, actor=staff)
    score_all(to_score, staff, value=4)
    with pytest.raises(errors.OwnVetting):
        services.application_approve(application_id=application.pk, actor=staff_engineer)

    assert not VettedRecord.objects.exists()


def test_the_interviewer_does_not_approve(rubric, engineer, staff):
    application = to_interview(engineer, staff)
    score_all(application, staff, value=4)

    with pytest.raises(errors.FourEyes):
        services.application_approve(application_id=application.pk, actor=staff)

    assert Application.objects.get(pk=application.pk).status == S.INTERVIEW


def test_only_the_interviewer_scores_and_another_staff_member_changes_nothing(rubric, engineer, staff, approver):
    application = to_interview(engineer, staff)
    criterion_id = Score.objects.filter(application=application).earliest("id").criterion_id

    with pytest.raises(errors.NotTheInterviewer):
        services.interview_score(application_id=application.pk, actor=approver, scores=[(criterion_id, 0, "mine")])

    assert Score.objects.get(application=application, criterion_id=criterion_id).value is None


def test_changing_a_score_keeps_the_old_version_with_its_author_and_note(rubric, engineer, staff):
    application = to_interview(engineer, staff)
    criterion_id = Score.objects.filter(application=application).earliest("id").criterion_id
    services.interview_score(application_id=application.pk, actor=staff, scores=[(criterion_id, 2, "first take")])

    services.interview_score(application_id=application.pk, actor=staff, scores=[(criterion_id, 3, "on reflection")])

    versions = list(
        Score.objects.filter(application=application, criterion_id=criterion_id)
        .order_by("id")
        .values_list("value", "note", "scored_by", "superseded_at")
    )
    assert [(v, n, by) for v, n, by, _ in versions] == [(2, "first take", staff.pk), (3, "on reflection", staff.pk)]
    assert versions[0][3] is not None
    assert versions[1][3] is None


def test_withdrawing_after_the_interview_began_counts_toward_the_cooldown(rubric, engineer, staff):
    application = to_interview(engineer, staff)
    score_all(application, staff, value=0)
    services.application_withdraw(application_id=application.pk, engineer=engineer)

    with pytest.raises(errors.CooldownActive):
        submit(engineer)

    assert Application.objects.filter(engineer=engineer).count() == 1


def test_withdrawing_before_the_interview_does_not(rubric, engineer, staff):
    application = submit(engineer)
    services.application_withdraw(application_id=application.pk, engineer=engineer)

    again = submit(engineer)

    assert again.status == S.SUBMITTED


def test_a_revoked_engineer_waits_out_the_revocation_cooldown(rubric, engineer, staff, settings):
    in_status(engineer, staff, S.APPROVED)
    record = VettedRecord.objects.get(engineer=engineer)
    services.vetted_record_revoke(record_id=record.pk, actor=staff, reason="plagiarised take-home")

    with pytest.raises(errors.CooldownActive):
        submit(engineer)
    with time_machine.travel(timezone.now() + timedelta(days=settings.VETTING_REVOKED_COOLDOWN_DAYS + 1)):
        again = submit(engineer)

    assert again.status == S.SUBMITTED


def test_engineers_are_reminded_once_when_renewal_opens(rubric, engineer, staff, django_capture_on_commit_callbacks):
    with time_machine.travel("2026-01-01 09:00Z", tick=False):
        in_status(engineer, staff, S.APPROVED)

    with time_machine.travel("2026-11-15 09:00Z", tick=False):
        early = services.vetting_expiry_reminders()
    with time_machine.travel("2026-12-10 09:00Z", tick=False):
        first = services.vetting_expiry_reminders()
        second = services.vetting_expiry_reminders()

    assert (early, first, second) == (0, 1, 0)
    assert VettedRecord.objects.get(engineer=engineer).reminded_at is not None


def test_scoring_a_criterion_twice_in_one_call_is_a_clear_refusal(rubric, engineer, staff):
    application = to_interview(engineer, staff)
    criterion_id = Score.objects.filter(application=application).earliest("id").criterion_id

    with pytest.raises(errors.InvalidScore, match="once per call"):
        services.interview_score(
            application_id=application.pk, actor=staff, scores=[(criterion_id, 2, ""), (criterion_id, 3, "")]
        )

    assert Score.objects.get(application=application, criterion_id=criterion_id).value is None


def test_a_renewal_in_flight_cannot_be_approved_after_a_revocation(rubric, engineer, staff, approver):
    in_status(engineer, staff, S.APPROVED)
    record = VettedRecord.objects.get(engineer=engineer)
    VettedRecord.objects.filter(pk=record.pk).update(expires_at=timezone.now() + timedelta(days=10))
    renewal = to_interview(engineer, staff)
    score_all(renewal, staff, value=4)

    services.vetted_record_revoke(record_id=record.pk, actor=staff, reason="fake identity")
    with pytest.raises(errors.CooldownActive):
        services.application_approve(application_id=renewal.pk, actor=approver)

    assert not VettedRecord.objects.filter(engineer=engineer, revoked_at=None).exists()
