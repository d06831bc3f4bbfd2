"""Hourly engagements on live processes, one Stripe test card each: uvicorn, a real Celery worker, the double.

The client and the engineer act only through the API, with bearer tokens. What the
client's browser does with Stripe.js (confirming a SetupIntent or a PaymentIntent,
passing 3D Secure) is done at the double, which sends its signed webhooks to the
server; the server stores them and the worker processes them.

The engineer logs last week, so the test runs alike on any day: the server runs with
an edit grace of GRACE_HOURS, which keeps last week open for time until next week; the
worker runs with none, so `timesheets_close`, sent to it, closes last week at once.
Retries are the sweep run here with a future `now` (the task takes no arguments).
Bounds are generous: they say that something happens, not how fast.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from datetime import timezone as fixed_offset
from typing import Any

import httpx
import pytest
from django.utils import timezone

from accounts.models import User
from accounts.services import api_token_create
from hiring_requests.models import Engagement
from payments import gateway, services
from payments import tasks as payments_tasks
from payments.models import HourlyBilling, LedgerTransaction, StripeEvent, Timesheet
from tests.factories import ClientFactory, HourlyEngagementFactory, PayoutAccountFactory, vetted_engineer
from tests.payments.helpers import last_monday
from tests.payments.live import DOUBLE_KEY, Double, stripe_double
from tests.processes import ROOT, asgi_server, celery_worker, current_database_url, free_port, needs_redis, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("the server sends the webhooks' tasks, and this test the close task, to a worker through Redis"),
]

GRACE_HOURS = 8 * 24  # last week ends at most 7 days ago: it stays open for time on any day
RATE = 4_000  # 40.00 an hour
MINUTES = [240, 200]  # 7 h 20 min: 29,333.33, charged once, rounded half up
AMOUNT = 29_333
WAIT = 30.0  # seconds for the worker to act on a webhook or a task
BERLIN_SUMMER = fixed_offset(timedelta(hours=2))  # entries are sent with an offset; weeks are decided in UTC


@dataclass
class Live:
    double: Double
    queue: str
    engagement: Engagement
    client: httpx.Client  # with the client's bearer token
    engineer: httpx.Client  # with the engineer's


def _bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token_create(user=user, name='hourly-live')[1]}"}


def _hired(double: Double) -> Engagement:
    """An hourly engagement just hired (40.00 an hour, 40 h a week), its engineer able to be paid at the double."""
    client, engineer = ClientFactory.create(), vetted_engineer()
    made = HourlyEngagementFactory.create(client=client, engineer=engineer, rate_minor=RATE, hours_per_week=40)
    services.billing_open(made)
    PayoutAccountFactory.create(engineer=engineer, stripe_account_id=double.onboarded_account())
    return made


@contextmanager
def live_hourly(tmp_path: Any, settings: Any) -> Iterator[Live]:
    port, queue = free_port(), f"hourly-{uuid.uuid4().hex[:8]}"
    webhook_url = f"http://127.0.0.1:{port}/api/payments/stripe/webhook"
    with stripe_double(log_dir=tmp_path, webhook_url=webhook_url) as double:
        shared = {"STRIPE_API_BASE": double.base, "CELERY_QUEUE": queue}
        settings.STRIPE_API_BASE = double.base  # for the sweep run here
        gateway.reset()
        try:
            with (
                celery_worker(queue=queue, log_dir=tmp_path, env={**shared, "TIMESHEET_EDIT_GRACE_HOURS": "0"}),
                asgi_server(
                    log_dir=tmp_path, port=port, env={**shared, "TIMESHEET_EDIT_GRACE_HOURS": str(GRACE_HOURS)}
                ) as base,
            ):
                made = _hired(double)  # once the server is up: the double's first webhook reaches it
                with (
                    httpx.Client(base_url=base, headers=_bearer(made.client), timeout=30) as client,
                    httpx.Client(base_url=base, headers=_bearer(made.engineer), timeout=30) as engineer,
                ):
                    yield Live(double, queue, made, client, engineer)
        finally:
            gateway.reset()


def _double(live: Live, path: str, **data: str) -> dict[str, Any]:
    """What Stripe.js does in the client's browser, at the double."""
    answer = httpx.post(f"{live.double.base}{path}", data=data, headers=DOUBLE_KEY, timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def save_card(live: Live, card: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The client asks for a SetupIntent and confirms it with `card` in Stripe.js: (our answer, Stripe's)."""
    setup = live.client.post(f"/api/payments/engagements/{live.engagement.pk}/payment-method")
    assert setup.status_code == 200, setup.text
    confirmed = _double(live, f"/v1/setup_intents/{setup.json()['setup_intent_id']}/confirm", payment_method=card)
    return setup.json(), confirmed


def billing(live: Live) -> dict[str, Any]:
    return dict(live.client.get(f"/api/payments/engagements/{live.engagement.pk}/billing").json())


def wait_for_billing(live: Live, status: str) -> dict[str, Any]:
    wait_until(lambda: billing(live)["status"] == status, timeout=WAIT, what=f"the billing to be {status}")
    return billing(live)


def log_last_week(live: Live) -> list[httpx.Response]:
    """The engagement started two weeks ago (back-dated); the engineer logs MINUTES on last Tuesday and Wednesday."""
    HourlyBilling.objects.filter(engagement=live.engagement).update(started_at=timezone.now() - timedelta(days=14))
    monday = last_monday()
    return [
        live.engineer.post(
            f"/api/payments/engagements/{live.engagement.pk}/time-entries",
            json={
                "started_at": (monday + timedelta(days=day + 1, hours=9)).astimezone(BERLIN_SUMMER).isoformat(),
                "minutes": minutes,
                "note": f"day {day + 1}: the worker pool",
            },
        )
        for day, minutes in enumerate(MINUTES)
    ]


def timesheet(live: Live, timesheet_id: int) -> dict[str, Any]:
    return dict(live.client.get(f"/api/payments/timesheets/{timesheet_id}").json())


def wait_for_timesheet(live: Live, timesheet_id: int, status: str) -> dict[str, Any]:
    wait_until(
        lambda: timesheet(live, timesheet_id)["status"] == status, timeout=WAIT, what=f"the timesheet to be {status}"
    )
    return timesheet(live, timesheet_id)


def close_weeks(live: Live, timesheet_id: int) -> dict[str, Any]:
    """The beat task, sent to the worker; returns the week once the client can review it."""
    payments_tasks.timesheets_close.apply_async(queue=live.queue)
    return wait_for_timesheet(live, timesheet_id, "submitted")


def notified(live: Live, who: httpx.Client, event: str, status: str) -> list[dict[str, Any]]:
    """The payloads of `who`'s notifications of `event` with `status`, through the API."""
    items = who.get("/api/notifications", params={"limit": 100}).json()["items"]
    return [item["payload"] for item in items if item["event"] == event and item["payload"].get("status") == status]


def settled(live: Live) -> set[str]:
    """Wait until every event the double made has reached the server and been processed by the worker; their types."""

    def made() -> list[dict[str, Any]]:
        answer = httpx.get(f"{live.double.base}/v1/events", params={"limit": 100}, headers=DOUBLE_KEY, timeout=10)
        return list(answer.json()["data"])

    def processed() -> bool:
        ids = {event["id"] for event in made()}
        return StripeEvent.objects.filter(stripe_id__in=ids, processed_at__isnull=False).count() == len(ids)

    wait_until(processed, timeout=WAIT, what="every webhook to be processed by the worker")
    return set(StripeEvent.objects.values_list("type", flat=True))


def ledger_check(live: Live) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "ledger_check"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": current_database_url(), "STRIPE_API_BASE": live.double.base},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def payout_kinds(timesheet_id: int) -> list[str]:
    return sorted(LedgerTransaction.objects.filter(timesheet_id=timesheet_id).values_list("kind", flat=True))


def test_a_visa_card_is_saved_and_the_week_is_charged_once_and_paid_out(rubric, tmp_path, settings):
    with live_hourly(tmp_path, settings) as live:
        hired = billing(live)
        _, confirmed = save_card(live, "pm_card_visa")
        active = wait_for_billing(live, "active")
        logged = log_last_week(live)
        week_id = logged[0].json()["timesheet_id"]
        submitted = close_weeks(live, week_id)
        approved = live.client.post(f"/api/payments/timesheets/{week_id}/approve")
        paid = wait_for_timesheet(live, week_id, "paid")
        processed = settled(live)
        intents, transfers = live.double.payment_intents(), live.double.transfers()
        check = ledger_check(live)

    week = Timesheet.objects.get(pk=week_id)
    assert hired["status"] == "awaiting_payment_method"
    assert confirmed["status"] == "succeeded"
    assert (active["card_brand"], active["card_last4"]) == ("visa", "4242")
    assert [response.status_code for response in logged] == [201, 201]
    assert (submitted["minutes"], submitted["amount_minor"]) == (440, AMOUNT)
    assert approved.status_code == 200, approved.text
    # Charged in the request; paid out by it, or by the worker acting on payment_intent.succeeded meanwhile.
    assert approved.json()["status"] in ("paying", "paid")
    assert (approved.json()["amount_minor"], paid["amount_minor"]) == (AMOUNT, AMOUNT)
    assert {"setup_intent.succeeded", "payment_intent.succeeded"} <= processed
    (intent,) = intents
    assert (intent["id"], intent["amount"], intent["status"]) == (week.payment_intent_id, AMOUNT, "succeeded")
    (transfer,) = transfers
    assert (transfer["id"], transfer["amount"]) == (week.transfer_id, AMOUNT - services.fee_for(AMOUNT))
    assert transfer["source_transaction"] == week.charge_id
    assert payout_kinds(week_id) == ["timesheet_charge", "timesheet_payout"]
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_card_declined_at_every_charge_pauses_the_engagement_until_a_new_card_pays(rubric, tmp_path, settings):
    with live_hourly(tmp_path, settings) as live:
        save_card(live, "pm_card_chargeCustomerFail")
        wait_for_billing(live, "active")
        week_id = log_last_week(live)[0].json()["timesheet_id"]
        close_weeks(live, week_id)
        failed = live.client.post(f"/api/payments/timesheets/{week_id}/approve")
        wait_until(
            lambda: bool(notified(live, live.client, "timesheet.changed", "charge_failed")),
            timeout=WAIT,
            what="the client to be told",
        )
        client_told = notified(live, live.client, "timesheet.changed", "charge_failed")
        for day in settings.TIMESHEET_CHARGE_RETRY_DAYS:
            services.timesheets_sweep(now=timezone.now() + timedelta(days=day, minutes=1))
        retried = timesheet(live, week_id)
        paused = billing(live)
        engineer_told = notified(live, live.engineer, "billing.changed", "paused")
        refused = live.engineer.post(
            f"/api/payments/engagements/{live.engagement.pk}/time-entries",
            json={"started_at": last_monday().isoformat(), "minutes": 30, "note": "more work"},
        )
        save_card(live, "pm_card_visa")
        paid = wait_for_timesheet(live, week_id, "paid")
        resumed = billing(live)
        processed = settled(live)
        intents, transfers = live.double.payment_intents(), live.double.transfers()
        check = ledger_check(live)

    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["failure_code"]) == ("charge_failed", "card_declined")
    assert client_told[0]["fix"]["pay_now"] == f"/api/payments/timesheets/{week_id}/pay"
    assert (retried["status"], retried["charge_failures"], retried["next_charge_at"]) == ("charge_failed", 4, None)
    assert paused["status"] == "paused"
    assert "Do not log more hours" in engineer_told[-1]["message"]
    assert refused.status_code == 409
    assert refused.json()["code"] == "billing_not_active"
    assert (paid["charge_failures"], paid["amount_minor"]) == (4, AMOUNT)
    assert (resumed["status"], resumed["card_last4"], resumed["paused_at"]) == ("active", "4242", None)
    assert processed >= {"setup_intent.succeeded", "payment_intent.payment_failed", "payment_intent.succeeded"}
    (intent,) = intents  # every retry, and the new card's charge, confirmed the same PaymentIntent
    assert (intent["id"], intent["status"], intent["amount"]) == (paid["payment_intent_id"], "succeeded", AMOUNT)
    (transfer,) = transfers
    assert transfer["id"] == paid["transfer_id"]
    assert payout_kinds(week_id) == ["timesheet_charge", "timesheet_payout"]
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_3ds_card_is_authenticated_at_setup_and_the_client_confirms_the_charge(rubric, tmp_path, settings):
    with live_hourly(tmp_path, settings) as live:
        setup, confirmed = save_card(live, "pm_card_authenticationRequired")
        before_3ds = billing(live)
        _double(live, f"/_test/setup_intents/{setup['setup_intent_id']}/authenticate")
        active = wait_for_billing(live, "active")
        week_id = log_last_week(live)[0].json()["timesheet_id"]
        close_weeks(live, week_id)
        failed = live.client.post(f"/api/payments/timesheets/{week_id}/approve")
        intent_id = failed.json()["payment_intent_id"]
        pay = live.client.post(f"/api/payments/timesheets/{week_id}/pay")
        on_session = _double(live, f"/v1/payment_intents/{intent_id}/confirm")
        authenticated = _double(live, f"/_test/payment_intents/{intent_id}/authenticate")
        paid = wait_for_timesheet(live, week_id, "paid")
        processed = settled(live)
        intents, transfers = live.double.payment_intents(), live.double.transfers()
        check = ledger_check(live)

    assert confirmed["status"] == "requires_action"
    assert before_3ds["status"] == "awaiting_payment_method"
    assert (active["card_last4"], active["status"]) == ("3184", "active")
    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["failure_code"]) == ("charge_failed", "authentication_required")
    assert pay.status_code == 200, pay.text
    assert pay.json()["timesheet"]["status"] == "charge_failed"
    assert pay.json()["client_secret"].startswith(intent_id)
    assert (on_session["status"], authenticated["status"]) == ("requires_action", "succeeded")
    assert (paid["payment_intent_id"], paid["amount_minor"]) == (intent_id, AMOUNT)
    assert "payment_intent.succeeded" in processed
    (intent,) = intents
    assert intent["id"] == intent_id
    (transfer,) = transfers
    assert transfer["id"] == paid["transfer_id"]
    assert payout_kinds(week_id) == ["timesheet_charge", "timesheet_payout"]
    assert check.returncode == 0, check.stdout + check.stderr
