"""Hourly engagements through the API, against the Stripe double: a card saved at hire, a week logged,
reviewed, charged off-session and paid out, with the ledger checked after each story."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
import time_machine
from django.utils import timezone

from marketplace.models import Notification
from payments import services
from payments.errors import BillingNotActive
from payments.models import BillingStatus, HourlyBilling, LedgerTransaction, TimeEntry, Timesheet, TimesheetStatus
from payments.selectors import ledger_problems
from tests.api_calls import post_json
from tests.factories import StaffFactory
from tests.payments.conftest import deliver_webhooks
from tests.payments.helpers import closed_week, hourly_engagement, last_monday, save_card

pytestmark = pytest.mark.django_db

T = TimesheetStatus


def intents(run) -> list[dict[str, Any]]:
    return list(run.double.objects["payment_intents"].values())


def test_a_week_is_logged_approved_charged_off_session_and_paid_out(client, rubric, stripe_settings):
    made = hourly_engagement(rate_minor=4_000)
    client.force_login(made.engineer)
    monday = last_monday()
    too_early = post_json(
        client,
        f"/api/payments/engagements/{made.pk}/time-entries",
        {"started_at": (monday + timedelta(hours=9)).isoformat(), "minutes": 60, "note": "reading the code"},
    )
    client.force_login(made.client)
    setup = post_json(client, f"/api/payments/engagements/{made.pk}/payment-method")
    stripe_settings.client.v1.setup_intents.confirm(
        setup.json()["setup_intent_id"], params={"payment_method": "pm_card_visa"}
    )
    deliver_webhooks(stripe_settings, client)
    HourlyBilling.objects.filter(engagement=made).update(started_at=monday - timedelta(days=7))
    billing = client.get(f"/api/payments/engagements/{made.pk}/billing").json()
    client.force_login(made.engineer)
    with time_machine.travel(monday + timedelta(days=6, hours=20)):  # Sunday evening of that week
        logged = [
            post_json(
                client,
                f"/api/payments/engagements/{made.pk}/time-entries",
                {"started_at": (monday + timedelta(days=day, hours=9)).isoformat(), "minutes": minutes, "note": "pool"},
            )
            for day, minutes in enumerate([240, 200])  # 7 h 20 min
        ]
    services.timesheets_close(now=monday + timedelta(days=7, hours=13))
    timesheet = Timesheet.objects.get(engagement=made)
    client.force_login(made.client)
    approved = post_json(client, f"/api/payments/timesheets/{timesheet.pk}/approve")
    deliver_webhooks(stripe_settings, client)

    assert too_early.status_code == 409
    assert too_early.json()["code"] == "billing_not_active"
    assert setup.status_code == 200
    assert setup.json()["client_secret"].startswith(setup.json()["setup_intent_id"])
    assert (billing["status"], billing["card_last4"], billing["hours_this_week"]) == ("active", "4242", 40)
    assert [response.status_code for response in logged] == [201, 201]
    assert approved.status_code == 200, approved.json()
    # 440 min at 40.00/h = 29,333.33: rounded once, half up, to 29,333 cents.
    assert (approved.json()["status"], approved.json()["amount_minor"]) == ("paid", 29_333)
    (intent,) = intents(stripe_settings)
    customer = made.client.stripe_customer.stripe_customer_id
    assert (intent["amount"], intent["customer"], intent["transfer_group"]) == (
        29_333,
        customer,
        f"timesheet-{timesheet.pk}",
    )
    assert intent["status"] == "succeeded"
    timesheet.refresh_from_db()
    transfer = stripe_settings.double.objects["transfers"][timesheet.transfer_id]
    assert (transfer["amount"], transfer["source_transaction"]) == (29_333 - 2_933, timesheet.charge_id)
    assert list(made.review_rounds.values_list("step", flat=True)) == [f"timesheet-{timesheet.pk}"]
    kinds = sorted(LedgerTransaction.objects.filter(timesheet=timesheet).values_list("kind", flat=True))
    assert kinds == ["timesheet_charge", "timesheet_payout"]
    assert ledger_problems() == []


def test_the_hire_response_says_the_engagement_waits_for_a_card(client, stripe_settings):
    made = hourly_engagement()

    billing = HourlyBilling.objects.get(engagement=made)

    assert billing.status == BillingStatus.AWAITING_PAYMENT_METHOD
    from hiring_requests.schemas import EngagementOut

    assert EngagementOut.from_orm(made).billing_status == "awaiting_payment_method"


@pytest.mark.parametrize(
    ("minutes", "rate", "amount"),
    [
        (440, 4_000, 29_333),  # 29,333.33
        (1, 30, 1),  # 0.5 rounds up
        (1, 29, 0),  # 0.483 rounds down
        (90, 5_000, 7_500),
        (7, 10_001, 1_167),  # 1,166.78
        (0, 4_000, 0),
    ],
)
def test_the_amount_is_rounded_half_up_once_on_the_week(minutes, rate, amount):
    assert services.amount_for(minutes, rate) == amount


def test_silence_approves_after_the_review_window(client, stripe_settings, settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made)
    timesheet = closed_week(made, [120, 120])
    deadline, submitted = timesheet.review_deadline, timesheet.submitted_at
    assert deadline is not None
    assert submitted is not None

    early = services.timesheets_sweep(now=deadline - timedelta(minutes=1))
    late = services.timesheets_sweep(now=deadline + timedelta(minutes=1))

    timesheet.refresh_from_db()
    assert early["auto_approved"] == 0
    assert late["auto_approved"] == 1
    assert timesheet.status == T.PAID
    assert deadline - submitted == timedelta(days=settings.TIMESHEET_REVIEW_DAYS)
    assert ledger_problems() == []


def test_an_empty_week_is_void_and_a_tiny_one_is_carried_into_the_next(client, stripe_settings):
    made = hourly_engagement(rate_minor=1_000)  # 10.00 an hour: 2 minutes is 33 cents, under Stripe's 50
    save_card(stripe_settings, client, made)
    monday = last_monday(2)
    services.time_entry_log(
        engineer=made.engineer,
        engagement_id=made.pk,
        started_at=monday + timedelta(hours=9),
        minutes=2,
        note="a quick look",
        now=monday + timedelta(days=1),
    )

    closed = services.timesheets_close(now=monday + timedelta(days=7, hours=13))

    tiny = Timesheet.objects.get(engagement=made, week_start=monday.date())
    later = Timesheet.objects.get(engagement=made, week_start=(monday + timedelta(days=7)).date())
    assert closed["carried_over"] == 1
    assert tiny.status == T.CARRIED_OVER
    assert later.carried_minutes == 2
    services.timesheets_close(now=monday + timedelta(days=14, hours=13))
    later.refresh_from_db()
    assert (later.status, later.minutes, later.amount_minor) == (T.CARRIED_OVER, 2, 33)  # still too little


def test_a_disputed_week_is_settled_by_staff_and_charged_for_the_share(client, stripe_settings):
    made = hourly_engagement(rate_minor=6_000)
    save_card(stripe_settings, client, made)
    timesheet = closed_week(made, [60, 120])  # 60.00 + 120.00
    second = TimeEntry.objects.get(timesheet=timesheet, minutes=120)
    client.force_login(made.client)
    disputed = post_json(
        client,
        f"/api/payments/timesheets/{timesheet.pk}/dispute",
        {"entries": [{"entry_id": second.pk, "reason": "this was a meeting I cancelled"}]},
    )
    staff = StaffFactory.create()
    client.force_login(staff)
    settled = post_json(
        client, f"/api/payments/staff/timesheets/{timesheet.pk}/settle", {"engineer_share_minor": 3_000}
    )

    assert disputed.status_code == 200
    assert disputed.json()["disputed_minutes"] == 120
    assert settled.status_code == 200, settled.json()
    assert (settled.json()["status"], settled.json()["amount_minor"]) == ("paid", 9_000)
    (intent,) = intents(stripe_settings)
    assert intent["amount"] == 9_000
    events = list(Timesheet.objects.get(pk=timesheet.pk).events.values_list("to_status", "actor_id"))
    assert (T.APPROVED, staff.pk) in events
    assert ledger_problems() == []


def test_a_settlement_out_of_range_changes_nothing(client, stripe_settings):
    made = hourly_engagement(rate_minor=6_000)
    save_card(stripe_settings, client, made)
    timesheet = closed_week(made, [60])
    services.timesheet_dispute(
        client=made.client, timesheet_id=timesheet.pk, entries=[(timesheet.entries.get().pk, "no")]
    )
    client.force_login(StaffFactory.create())

    refused = post_json(
        client, f"/api/payments/staff/timesheets/{timesheet.pk}/settle", {"engineer_share_minor": 6_001}
    )

    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_time_entry"
    timesheet.refresh_from_db()
    assert (timesheet.status, timesheet.amount_minor, timesheet.settle_share_minor) == (T.DISPUTED, 6_000, None)
    assert intents(stripe_settings) == []


def test_a_declined_card_is_retried_on_schedule_then_the_engagement_pauses(client, stripe_settings, settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made, "pm_card_chargeCustomerFail")
    timesheet = closed_week(made, [120])

    first = services.timesheet_approve(client=made.client, timesheet_id=timesheet.pk)
    failures = [first.charge_failures]
    for day in settings.TIMESHEET_CHARGE_RETRY_DAYS:
        services.timesheets_sweep(now=timezone.now() + timedelta(days=day, minutes=1))
        timesheet.refresh_from_db()
        failures.append(timesheet.charge_failures)

    billing = HourlyBilling.objects.get(engagement=made)
    assert first.status == T.CHARGE_FAILED
    assert first.failure_code == "card_declined"
    assert failures == [1, 2, 3, 4]
    assert (timesheet.status, timesheet.next_charge_at) == (T.CHARGE_FAILED, None)
    assert billing.status == BillingStatus.PAUSED
    assert len(intents(stripe_settings)) == 1  # every retry confirmed the same PaymentIntent
    told = Notification.objects.filter(user=made.engineer, event="billing.changed").last()
    assert told is not None
    assert "Do not log more hours" in told.payload["message"]
    client_told = Notification.objects.filter(
        user=made.client, event="timesheet.changed", payload__status="charge_failed"
    )
    assert client_told.count() == 4
    assert client_told[0].payload["fix"]["pay_now"] == f"/api/payments/timesheets/{timesheet.pk}/pay"
    with pytest.raises(BillingNotActive) as refused:
        services.time_entry_log(
            engineer=made.engineer,
            engagement_id=made.pk,
            started_at=timezone.now() - timedelta(hours=2),
            minutes=30,
            note="more work",
        )
    assert getattr(refused.value, "code", "") == "billing_not_active"
    assert ledger_problems() == []


def test_a_new_card_charges_the_failed_week_at_once_and_resumes_the_engagement(client, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made, "pm_card_chargeCustomerFail")
    timesheet = closed_week(made, [120])
    services.timesheet_approve(client=made.client, timesheet_id=timesheet.pk)
    HourlyBilling.objects.filter(engagement=made).update(status=BillingStatus.PAUSED)

    save_card(stripe_settings, client, made, "pm_card_visa")

    timesheet.refresh_from_db()
    billing = HourlyBilling.objects.get(engagement=made)
    assert timesheet.status == T.PAID
    assert (billing.status, billing.card_last4) == (BillingStatus.ACTIVE, "4242")
    (intent,) = intents(stripe_settings)
    assert intent["status"] == "succeeded"
    assert ledger_problems() == []


def test_authentication_required_is_confirmed_by_the_client_and_charged_once(client, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made, "pm_card_authenticationRequired")
    timesheet = closed_week(made, [120])
    client.force_login(made.client)

    failed = post_json(client, f"/api/payments/timesheets/{timesheet.pk}/approve")
    pay = post_json(client, f"/api/payments/timesheets/{timesheet.pk}/pay")
    intent_id = failed.json()["payment_intent_id"]
    confirmed = stripe_settings.client.v1.payment_intents.confirm(intent_id)  # Stripe.js, with the client there
    httpx.post(f"{stripe_settings.base}/_test/payment_intents/{intent_id}/authenticate", timeout=5)
    deliver_webhooks(stripe_settings, client)
    services.timesheets_sweep(now=timezone.now() + timedelta(days=6))  # a retry finds it paid

    timesheet.refresh_from_db()
    assert (failed.json()["status"], failed.json()["failure_code"]) == ("charge_failed", "authentication_required")
    assert pay.status_code == 200
    assert pay.json()["client_secret"].startswith(intent_id)
    assert confirmed.status == "requires_action"
    assert timesheet.status == T.PAID
    assert len(intents(stripe_settings)) == 1
    assert len(stripe_settings.double.objects["transfers"]) == 1
    assert ledger_problems() == []


def test_a_webhook_that_records_the_charge_before_the_call_returns_changes_nothing_more(client, stripe_settings):
    from marketplace.db import atomic_phase  # noqa: F401 - the phases run here one by one, as a request would
    from payments.services import timesheet_billing as billing

    made = hourly_engagement()
    save_card(stripe_settings, client, made)
    timesheet = closed_week(made, [120])
    plan = billing._charge_claim(actor=made.client, timesheet_id=timesheet.pk, approving=True)
    assert isinstance(plan, billing._Charge)
    from asgiref.sync import async_to_sync

    from payments import gateway

    intent = async_to_sync(gateway.create_payment_intent)(
        amount=plan.amount,
        currency=plan.currency,
        transfer_group=f"timesheet-{plan.timesheet_id}",
        metadata={"timesheet_id": str(plan.timesheet_id)},
        key=plan.key,
        customer=plan.customer,
        payment_method=plan.payment_method,
    )
    deliver_webhooks(stripe_settings, client)  # payment_intent.succeeded first: charged and paid out
    late = billing._charged_record(timesheet_id=timesheet.pk, intent_id=intent.id, charge_id=str(intent.latest_charge))

    assert late.status == T.PAID
    assert LedgerTransaction.objects.filter(timesheet=timesheet, kind="timesheet_charge").count() == 1
    assert len(stripe_settings.double.objects["transfers"]) == 1
    assert ledger_problems() == []


def test_only_the_engagements_client_approves_and_nothing_changes_for_others(client, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made)
    timesheet = closed_week(made, [120])
    other = hourly_engagement()

    answers = []
    for user in (made.engineer, other.client):
        client.force_login(user)
        answers.append(post_json(client, f"/api/payments/timesheets/{timesheet.pk}/approve"))

    assert [answer.status_code for answer in answers] == [403, 404]
    timesheet.refresh_from_db()
    assert timesheet.status == T.SUBMITTED
    assert intents(stripe_settings) == []


def test_a_lost_webhook_for_a_confirmed_week_is_caught_up_from_stripe(client, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made, "pm_card_authenticationRequired")
    timesheet = closed_week(made, [120])
    failed = services.timesheet_approve(client=made.client, timesheet_id=timesheet.pk)
    stripe_settings.client.v1.payment_intents.confirm(failed.payment_intent_id)
    httpx.post(f"{stripe_settings.base}/_test/payment_intents/{failed.payment_intent_id}/authenticate", timeout=5)
    stripe_settings.drain()
    stripe_settings.collector.received.clear()  # payment_intent.succeeded never reaches us

    before = services.ledger_compare_with_stripe()
    caught_up = services.catch_up_with_stripe()

    timesheet.refresh_from_db()
    assert before == [
        f"timesheet {timesheet.pk} is charge_failed but Stripe captured 8000 usd on PaymentIntent "
        f"{failed.payment_intent_id}"
    ]
    assert caught_up == 1
    assert timesheet.status == T.PAID
    assert services.ledger_compare_with_stripe() == []
    assert ledger_problems() == []
    # A paid week whose PaymentIntent Stripe holds for another amount, or not as succeeded, is a difference.
    intent = stripe_settings.double.objects["payment_intents"][failed.payment_intent_id]
    intent["amount_received"] = 7_999
    intent["status"] = "succeeded"
    differ_in_amount = services.ledger_compare_with_stripe()
    intent.update(amount_received=8_000, status="requires_payment_method")
    differ_in_status = services.ledger_compare_with_stripe()
    assert differ_in_amount == [
        f"timesheet {timesheet.pk}: Stripe's PaymentIntent is succeeded for 7999, the ledger holds 8000"
    ]
    assert differ_in_status == [
        f"timesheet {timesheet.pk}: Stripe's PaymentIntent is requires_payment_method for 8000, the ledger holds 8000"
    ]


def test_pay_now_tries_the_card_again_even_while_the_engagement_is_paused(client, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made, "pm_card_chargeCustomerFail")
    timesheet = closed_week(made, [120])
    services.timesheet_approve(client=made.client, timesheet_id=timesheet.pk)
    HourlyBilling.objects.filter(engagement=made).update(status=BillingStatus.PAUSED)
    client.force_login(made.client)

    paid = post_json(client, f"/api/payments/timesheets/{timesheet.pk}/pay")

    assert paid.status_code == 200
    assert paid.json()["timesheet"]["charge_failures"] == 2  # the card was tried, and declined again
    assert len(intents(stripe_settings)) == 1
    assert ledger_problems() == []


def test_a_confirmation_left_half_done_counts_as_a_failed_try(client, stripe_settings):
    made = hourly_engagement()
    save_card(stripe_settings, client, made, "pm_card_authenticationRequired")
    timesheet = closed_week(made, [120])
    failed = services.timesheet_approve(client=made.client, timesheet_id=timesheet.pk)
    stripe_settings.client.v1.payment_intents.confirm(failed.payment_intent_id)  # 3D Secure begun, never finished

    services.timesheets_sweep(now=timezone.now() + timedelta(days=1, minutes=1))

    timesheet.refresh_from_db()
    assert (timesheet.status, timesheet.charge_failures) == (T.CHARGE_FAILED, 2)
    assert timesheet.next_charge_at is not None
    assert timesheet.next_charge_at > timezone.now() + timedelta(days=1)  # the schedule moved on
