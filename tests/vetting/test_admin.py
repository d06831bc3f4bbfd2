"""Staff take an engineer from application to approved entirely in Django admin."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from tests.factories import EngineerFactory, StaffFactory
from tests.vetting.conftest import in_status, submit
from vetting.apps import STAFF_GROUP, ensure_staff_group
from vetting.models import Application, ApplicationStatus, Score, VettedRecord
from vetting.selectors import matchable_engineers

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/vetting/application/"


def run_action(client, action, application, **extra):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [application.pk], **extra}, follow=True)


def score_form(application: Application, value: int) -> dict[str, object]:
    scores = list(Score.objects.filter(application=application).order_by("pk"))
    data: dict[str, object] = {
        "scores-TOTAL_FORMS": len(scores),
        "scores-INITIAL_FORMS": len(scores),
        "scores-MIN_NUM_FORMS": 0,
        "scores-MAX_NUM_FORMS": 1000,
        "events-TOTAL_FORMS": 0,
        "events-INITIAL_FORMS": 0,
        "events-MIN_NUM_FORMS": 0,
        "events-MAX_NUM_FORMS": 1000,
    }
    for index, score in enumerate(scores):
        data[f"scores-{index}-id"] = score.pk
        data[f"scores-{index}-application"] = application.pk
        data[f"scores-{index}-value"] = value
        data[f"scores-{index}-note"] = "asked about cancellation"
    return data


def test_staff_vet_an_engineer_from_application_to_approval_in_admin(client, rubric):
    staff = StaffFactory.create(is_superuser=True)
    engineer = EngineerFactory.create()
    application = submit(engineer)
    client.force_login(staff)

    run_action(client, "start_screening", application)
    run_action(client, "start_interview", application)
    client.post(f"{CHANGELIST}{application.pk}/change/", score_form(application, 4))
    lead = StaffFactory.create(is_superuser=True)  # four eyes: someone else approves
    client.force_login(lead)
    confirm = run_action(client, "approve", application)
    run_action(client, "approve", application, apply="1", note="Strong on cancellation")

    assert b"Note for the engineer" in confirm.content
    application.refresh_from_db()
    assert application.status == ApplicationStatus.APPROVED
    assert [e.to_status for e in application.events.all()] == ["submitted", "screening", "interview", "approved"]
    assert [e.actor_id for e in application.events.all()[1:]] == [staff.pk, staff.pk, lead.pk]
    assert set(Score.objects.filter(application=application).values_list("value", "scored_by")) == {(4, staff.pk)}
    record = VettedRecord.objects.get(engineer=engineer)
    assert (record.level, application.decision_reason) == ("staff", "Strong on cancellation")
    client.force_login(engineer)
    mine = client.get("/api/vetting/applications/mine").json()["items"][0]
    assert (mine["status"], mine["decision"]["level"]) == ("approved", "staff")


def test_an_admin_action_that_is_not_allowed_reports_and_changes_nothing(client, rubric):
    staff = StaffFactory.create(is_superuser=True)
    application = submit(EngineerFactory.create())
    client.force_login(staff)

    response = run_action(client, "approve", application, apply="1", note="")

    assert b"cannot be approved" in response.content
    application.refresh_from_db()
    assert application.status == ApplicationStatus.SUBMITTED
    assert not VettedRecord.objects.exists()


def test_reject_in_admin_needs_a_reason(client, rubric):
    staff = StaffFactory.create(is_superuser=True)
    application = submit(EngineerFactory.create())
    client.force_login(staff)

    response = run_action(client, "reject", application, apply="1", note="")

    assert b"Say why the application is rejected" in response.content
    application.refresh_from_db()
    assert application.status == ApplicationStatus.SUBMITTED


def test_scores_cannot_be_changed_after_the_decision(client, rubric):
    staff = StaffFactory.create(is_superuser=True)
    application = submit(EngineerFactory.create())
    client.force_login(staff)
    run_action(client, "start_screening", application)
    run_action(client, "start_interview", application)
    client.post(f"{CHANGELIST}{application.pk}/change/", score_form(application, 1))
    run_action(client, "reject", application, apply="1", note="Not yet; revisit cancellation")

    response = client.post(f"{CHANGELIST}{application.pk}/change/", score_form(application, 4), follow=True)

    assert b"Scores not saved" in response.content
    application.refresh_from_db()
    assert application.status == ApplicationStatus.REJECTED
    assert set(Score.objects.filter(application=application).values_list("value", flat=True)) == {1}


def test_the_queue_shows_age_and_overdue(client, rubric):
    staff = StaffFactory.create(is_superuser=True)
    submit(EngineerFactory.create())
    client.force_login(staff)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert b"0d 0h" in response.content
    assert client.get(f"{CHANGELIST}?overdue=yes").context["cl"].result_count == 0


def test_revoke_in_admin_asks_for_a_reason_and_records_it(client, rubric):
    staff = StaffFactory.create(is_superuser=True)
    engineer = EngineerFactory.create()
    in_status(engineer, staff, ApplicationStatus.APPROVED)
    record = VettedRecord.objects.get(engineer=engineer)
    client.force_login(staff)
    url = "/admin/vetting/vettedrecord/"

    confirm = client.post(url, {"action": "revoke", "_selected_action": [record.pk]})
    client.post(url, {"action": "revoke", "_selected_action": [record.pk], "apply": "1", "note": "fake references"})

    assert b"Reason (required" in confirm.content
    record.refresh_from_db()
    assert (record.revoke_reason, record.revoked_by_id) == ("fake references", staff.pk)
    assert list(matchable_engineers()) == []


def test_a_staff_member_in_the_vetting_group_can_work_the_queue(client, rubric):
    ensure_staff_group(sender=apps.get_app_config("vetting"))
    staff = StaffFactory.create(is_superuser=False)
    staff.groups.add(Group.objects.get(name=STAFF_GROUP))
    application = submit(EngineerFactory.create())
    client.force_login(staff)

    run_action(client, "start_screening", application)

    application.refresh_from_db()
    assert application.status == ApplicationStatus.SCREENING
    assert client.get("/admin/vetting/rubric/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 403
