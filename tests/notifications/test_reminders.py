"""Reminders fire once, at the right moment on a moved clock: invitations, timesheets, requests at risk."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone

from hiring_requests import services as hiring
from marketplace.models import EmailOutbox, ReminderSent
from marketplace.notifications import outbox, reminders
from payments.models import BillingStatus, HourlyBilling
from tests.factories import ClientFactory, StaffFactory, vetted_engineer
from tests.hiring_requests.conftest import raised
from tests.payments.helpers import closed_week, engagement, hourly_engagement

pytestmark = pytest.mark.django_db


def emails_of(user, kind) -> list[str]:
    """Send the user's waiting emails of `kind` (their tasks), and return the subjects that went to them."""
    for row in EmailOutbox.objects.filter(user=user, kind=kind):
        outbox.email_send(outbox_id=row.pk)
    return [str(m.subject) for m in mail.outbox if m.to == [user.email]]


def at(moment):
    return time_machine.travel(moment, tick=False)


def test_an_engineer_is_reminded_once_of_an_invitation_expiring_within_the_hour():
    engineer = vetted_engineer()
    request = raised(ClientFactory.create())
    hiring.matching_run(request_id=request.pk)
    invitation = request.invitations.get(engineer=engineer)
    window = timedelta(minutes=settings.INVITATION_EXPIRY_REMINDER_MINUTES)

    with at(invitation.expires_at - window - timedelta(minutes=1)):
        early = reminders.reminders_send()
    with at(invitation.expires_at - window + timedelta(minutes=1)):
        due = reminders.reminders_send()
        again = reminders.reminders_send()
        subjects = emails_of(engineer, "invitation.expiring")

    assert (early["invitation.expiring"], due["invitation.expiring"], again["invitation.expiring"]) == (0, 1, 0)
    assert subjects == [f"Your invitation expires soon: {request.title}"]
    assert "expires at" in mail.outbox[-1].body


def test_an_answered_invitation_is_not_reminded():
    engineer = vetted_engineer()
    request = raised(ClientFactory.create())
    hiring.matching_run(request_id=request.pk)
    invitation = request.invitations.get(engineer=engineer)
    hiring.invitation_accept(engineer=engineer, invitation_id=invitation.pk)

    with at(invitation.expires_at - timedelta(minutes=5)):
        assert reminders.reminders_send()["invitation.expiring"] == 0


def test_a_client_is_reminded_once_of_a_week_awaiting_approval_a_day_before_silence_approves_it():
    made = hourly_engagement(onboarded=False)
    # The client's card is saved (what save_card does at the Stripe double).
    HourlyBilling.objects.filter(engagement=made).update(
        status=BillingStatus.ACTIVE, payment_method_id="pm_card_visa", started_at=timezone.now() - timedelta(days=28)
    )
    timesheet = closed_week(made, [120, 180])
    assert timesheet.review_deadline is not None
    window = timedelta(hours=settings.TIMESHEET_REVIEW_REMINDER_HOURS)

    with at(timesheet.review_deadline - window - timedelta(minutes=1)):
        early = reminders.reminders_send()
    with at(timesheet.review_deadline - window + timedelta(minutes=1)):
        due = reminders.reminders_send()
        subjects = emails_of(made.client, "timesheet.awaiting_approval")
        body = mail.outbox[-1].body
    with at(timesheet.review_deadline - timedelta(minutes=1)):
        again = reminders.reminders_send()

    counts = [run["timesheet.awaiting_approval"] for run in (early, due, again)]
    assert counts == [0, 1, 0]
    assert ReminderSent.objects.filter(kind="timesheet.awaiting_approval", subject_id=timesheet.pk).count() == 1
    assert len(subjects) == 1
    assert subjects[0].startswith("Hours to review by ")
    assert "$200.00" in body  # 5 hours at $40
    assert emails_of(made.engineer, "timesheet.awaiting_approval") == []


def test_staff_are_emailed_when_a_request_comes_within_the_warning_window_of_its_deadline():
    staff = StaffFactory.create()
    request = raised(ClientFactory.create())
    assert request.match_deadline is not None
    warn_at = request.match_deadline - timedelta(minutes=settings.MATCH_WARN_BEFORE_MINUTES)

    with at(warn_at - timedelta(minutes=1)):
        hiring.clock_sweep()
    assert emails_of(staff, "request.at_risk") == []
    with at(warn_at + timedelta(minutes=1)):
        hiring.clock_sweep()
        hiring.clock_sweep()
        subjects = emails_of(staff, "request.at_risk")

    assert subjects == [f"At risk: {request.title}"]


def test_a_reminder_kind_can_be_registered_by_another_app(monkeypatch):
    from marketplace.notifications import kinds

    monkeypatch.setattr(kinds, "KINDS", dict(kinds.KINDS))
    monkeypatch.setattr(reminders, "KINDS", kinds.KINDS)
    monkeypatch.setattr(reminders, "REMINDERS", list(reminders.REMINDERS))
    client = ClientFactory.create()
    kinds.register(
        kinds.Kind("example.deadline_near", kinds.CLIENT, "An example deadline is near.", subject="Deadline near")
    )
    reminders.register(
        reminders.Reminder("example.deadline_near", lambda now: [reminders.Due(41, [client.pk], {"title": "x"})])
    )

    assert reminders.reminders_send(now=timezone.now())["example.deadline_near"] == 1
    assert reminders.reminders_send(now=timezone.now())["example.deadline_near"] == 0


def test_a_client_who_has_not_reviewed_is_reminded_a_day_before_the_review_window_closes():
    from reviews.services import review_round_open

    made = engagement(onboarded=False)
    round_ = review_round_open(engagement=made, step="milestone-1")

    with at(round_.closes_at - timedelta(hours=25)):
        early = reminders.reminders_send()["review.window_closing"]
    with at(round_.closes_at - timedelta(hours=23)):
        due = reminders.reminders_send()["review.window_closing"]
        again = reminders.reminders_send()["review.window_closing"]
        client_subjects = emails_of(made.client, "review.window_closing")
        engineer_subjects = emails_of(made.engineer, "review.window_closing")

    assert (early, due, again) == (0, 1, 0)
    assert client_subjects == [f"Last day to review engagement #{made.pk}"]
    assert engineer_subjects == []
