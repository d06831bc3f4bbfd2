"""Two staff members (or two clicks) at once: the row lock and the unique indexes decide, not luck."""

import pytest

from tests.concurrency import race
from tests.factories import EngineerFactory, StaffFactory
from tests.vetting.conftest import STATEMENT, score_all, to_interview
from vetting import services
from vetting.models import Application, ApplicationEvent, VettedRecord

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_staff_approving_at_once_grant_one_record(rubric):
    # Neither approver is the interviewer (four eyes), so only the race decides who wins.
    interviewer, first, second = StaffFactory.create(), StaffFactory.create(), StaffFactory.create()
    application = to_interview(EngineerFactory.create(), interviewer)
    score_all(application, interviewer)

    outcomes = race(
        lambda: services.application_approve(application_id=application.pk, actor=first),
        lambda: services.application_approve(application_id=application.pk, actor=second),
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["TransitionNotAllowed", "VettedRecord"]
    assert VettedRecord.objects.filter(application=application).count() == 1
    assert ApplicationEvent.objects.filter(application=application, to_status="approved").count() == 1


def test_approve_and_reject_at_once_end_in_one_decision(rubric):
    staff = StaffFactory.create()
    application = to_interview(EngineerFactory.create(), staff)
    score_all(application, staff)

    race(
        lambda: services.application_approve(application_id=application.pk, actor=staff),
        lambda: services.application_reject(application_id=application.pk, actor=staff, reason="no"),
    )

    application.refresh_from_db()
    decisions = ApplicationEvent.objects.filter(application=application, to_status__in=["approved", "rejected"])
    assert decisions.count() == 1
    assert application.status == decisions.get().to_status
    # A record exists only for an approval, never beside a rejection.
    records = VettedRecord.objects.filter(application=application)
    assert records.count() == ApplicationEvent.objects.filter(application=application, to_status="approved").count()


def test_double_submitted_application_is_stored_once(rubric):
    engineer = EngineerFactory.create()

    outcomes = race(
        lambda: services.application_submit(engineer=engineer, statement=STATEMENT, links=[]),
        lambda: services.application_submit(engineer=engineer, statement=STATEMENT, links=[]),
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["Application", "ApplicationAlreadyOpen"]
    assert Application.objects.filter(engineer=engineer).count() == 1
