"""Hourly weeks under contention: approvals at the same moment, an approval racing the auto-approve, and
sweeps racing on a retry. Each week is charged once and paid out once, whoever gets there first."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments import services
from payments.models import LedgerTransaction, Timesheet, TimesheetStatus
from payments.selectors import ledger_problems
from payments.services import timesheet_billing as billing
from tests.concurrency import race
from tests.payments.helpers import closed_week, hourly_engagement, save_card

pytestmark = pytest.mark.django_db(transaction=True)

T = TimesheetStatus


def confirms(run) -> list[str]:
    """The off-session retries that reached the double: confirmations of a PaymentIntent."""
    return [
        path for method, path in run.double.requests if path.startswith("/v1/payment_intents/") and "/confirm" in path
    ]


def test_twenty_concurrent_approvals_charge_once_and_pay_out_once(client, rubric, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made)
    week = closed_week(made, [120, 120])

    outcomes = race(*[lambda: services.timesheet_approve(client=made.client, timesheet_id=week.pk)] * 20)

    approved = [o for o in outcomes if isinstance(o, Timesheet)]
    refused = [(type(o).__name__, getattr(o, "status", None)) for o in outcomes if not isinstance(o, Timesheet)]
    assert [t.status for t in approved] == [T.PAID]
    assert refused == [("TimesheetStateConflict", 409)] * 19
    assert len(stripe_settings.double.objects["payment_intents"]) == 1
    assert len(stripe_settings.double.objects["transfers"]) == 1
    assert LedgerTransaction.objects.filter(timesheet=week, kind="timesheet_charge").count() == 1
    assert ledger_problems() == []


def test_an_approval_racing_the_auto_approve_charges_once_and_pays_out_once(client, rubric, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made)
    week = closed_week(made, [120])
    assert week.review_deadline is not None
    silence_approves_at = week.review_deadline + timedelta(minutes=1)

    race(
        lambda: services.timesheet_approve(client=made.client, timesheet_id=week.pk),
        lambda: services.timesheets_sweep(now=silence_approves_at),
    )

    week.refresh_from_db()
    assert week.status == T.PAID
    assert len(stripe_settings.double.objects["payment_intents"]) == 1
    assert len(stripe_settings.double.objects["transfers"]) == 1
    assert ledger_problems() == []


def test_two_sweeps_racing_on_a_due_retry_confirm_it_once(client, rubric, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made, "pm_card_chargeCustomerFail")
    week = closed_week(made, [120])
    services.timesheet_approve(client=made.client, timesheet_id=week.pk)  # the first failure
    due = timezone.now() + timedelta(days=1, minutes=1)

    race(lambda: services.timesheets_sweep(now=due), lambda: services.timesheets_sweep(now=due))

    week.refresh_from_db()
    assert (week.status, week.charge_failures) == (T.CHARGE_FAILED, 2)
    assert len(confirms(stripe_settings)) == 1
    assert len(stripe_settings.double.objects["payment_intents"]) == 1
    assert ledger_problems() == []


def test_a_sweep_that_listed_a_retry_before_another_sweep_ran_it_does_not_retry_it_again(
    client, rubric, stripe_settings, monkeypatch
):
    # The race above, with its losing order laid out: sweep B lists the due week, sweep A
    # retries it (the card fails again, the next retry is days away), then B goes on with its list.
    made = hourly_engagement()
    save_card(stripe_settings, client, made, "pm_card_chargeCustomerFail")
    week = closed_week(made, [120])
    services.timesheet_approve(client=made.client, timesheet_id=week.pk)
    due = timezone.now() + timedelta(days=1, minutes=1)
    listed_by_b = billing._due(due)
    services.timesheets_sweep(now=due)
    monkeypatch.setattr(billing, "_due", lambda now: listed_by_b)

    services.timesheets_sweep(now=due)

    week.refresh_from_db()
    assert listed_by_b[1] == [week.pk]
    assert (week.status, week.charge_failures) == (T.CHARGE_FAILED, 2)
    assert len(confirms(stripe_settings)) == 1
