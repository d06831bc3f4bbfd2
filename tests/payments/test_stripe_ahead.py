"""Money that moves at Stripe always reaches our books: each case once left Stripe ahead of the ledger."""

import logging
from datetime import timedelta

import httpx
import pytest
import stripe
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from marketplace.idempotency import fingerprint
from marketplace.models import IdempotencyRecord
from payments import gateway, services
from payments.errors import MilestoneStateConflict
from payments.models import Dispute, LedgerAccount, LedgerTransaction, Milestone, StripeEvent
from payments.selectors import ledger_problems
from tests.api_calls import post_json
from tests.payments.conftest import deliver_webhooks
from tests.payments.helpers import engagement, funded, milestone, pay_at_stripe, stripe_mode

pytestmark = pytest.mark.django_db


def _store_webhooks(run, client) -> None:
    """What the webhook view does: store each event the double sent; processing is left to the test."""
    run.drain()
    for body, signature in run.collector.received:
        post_raw = client.post(
            "/api/payments/stripe/webhook", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
        )
        assert post_raw.status_code == 200
    run.collector.received.clear()


def test_a_chargeback_after_release_is_booked_as_the_platforms_exposure(client, rubric, stripe_settings, caplog):
    made = engagement()
    work = funded(stripe_settings, client, made, amount=150_000)
    services.milestone_submit(engineer=made.engineer, milestone_id=work.pk)
    services.milestone_approve(client=made.client, milestone_id=work.pk)
    work.refresh_from_db()

    httpx.post(f"{stripe_settings.base}/_test/charges/{work.charge_id}/dispute", data={"reason": "fraudulent"})
    with caplog.at_level(logging.ERROR):
        deliver_webhooks(stripe_settings, client)

    dispute = Dispute.objects.get()
    assert (dispute.milestone_id, dispute.amount_minor, dispute.platform_exposed) == (work.pk, 150_000, True)
    assert Milestone.objects.get(pk=work.pk).status == "released"  # the payout stands; the platform carries it
    assert LedgerAccount.objects.get(code="dispute_exposure:platform:usd").balance == -150_000
    assert StripeEvent.objects.filter(processed_at=None).count() == 0
    assert any(record.message == "milestone.disputed" for record in caplog.records)
    assert ledger_problems() == []
    assert services.ledger_compare_with_stripe() == []


def _charged_back(run, client, *, disputed_by_client: bool = False) -> tuple[Milestone, Dispute]:
    made = engagement()
    work = funded(run, client, made)
    if disputed_by_client:
        services.milestone_submit(engineer=made.engineer, milestone_id=work.pk)
        services.milestone_dispute(user=made.client, milestone_id=work.pk, reason="not as agreed")
    httpx.post(f"{run.base}/_test/charges/{work.charge_id}/dispute", data={"reason": "fraudulent"})
    deliver_webhooks(run, client)
    return Milestone.objects.get(pk=work.pk), Dispute.objects.get()


def record_dispute(work: Milestone, *, dispute_id: str, amount: int, status: str) -> None:
    """What reading a card dispute back from Stripe records (`_dispute_record`), under its own transaction."""
    from django.db import transaction

    with transaction.atomic():
        services.webhooks._dispute_record(
            dispute_id=dispute_id,
            charge_id=work.charge_id,
            amount=amount,
            currency="usd",
            reason="fraudulent",
            status=status,
        )


@pytest.mark.parametrize("disputed_by_client", [False, True])
def test_a_chargeback_on_money_in_escrow_takes_it_out_and_cannot_be_refunded_again(
    client, rubric, stripe_settings, staff, disputed_by_client
):
    work, dispute = _charged_back(stripe_settings, client, disputed_by_client=disputed_by_client)

    with pytest.raises(MilestoneStateConflict):
        services.milestone_settle(staff=staff, milestone_id=work.pk, engineer_share_minor=0)

    charge = stripe_settings.double.objects["charges"][work.charge_id]
    assert work.status == "charged_back"
    assert dispute.platform_exposed is False
    assert LedgerAccount.objects.get(code=f"escrow:milestone-{work.pk}:usd").balance == 0
    assert charge["amount_refunded"] == 0  # the cardholder got it back once, through the dispute
    assert ledger_problems() == []
    assert services.ledger_compare_with_stripe() == []


def test_a_chargeback_out_of_escrow_is_booked_against_the_milestone(client, rubric, stripe_settings, staff):
    from marketplace.models import Notification
    from payments.models import MilestoneEvent

    work, dispute = _charged_back(stripe_settings, client)

    booked = LedgerTransaction.objects.filter(milestone=work).order_by("pk").values_list("kind", flat=True)
    assert list(booked) == ["fund", "chargeback"]
    assert LedgerTransaction.objects.get(kind="chargeback").reference == f"chargeback:{dispute.stripe_id}"
    # The network's reason, in the milestone's history and in what staff hear.
    moved = MilestoneEvent.objects.filter(milestone=work).latest("pk")
    assert (moved.to_status, moved.note) == ("charged_back", "card dispute: fraudulent")
    (told,) = Notification.objects.filter(user=staff, event="milestone.disputed").values_list("payload", flat=True)
    assert told == {
        "milestone_id": work.pk,
        "dispute_id": dispute.stripe_id,
        "reason": "card dispute: fraudulent",
        "milestone_status": "charged_back",
        "amount_minor": dispute.amount_minor,
    }


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_a_closed_dispute_delivered_again_is_closed_once_whichever_way_it_went(
    client, rubric, stripe_settings, staff, outcome
):

    from marketplace.models import Notification

    work, dispute = _charged_back(stripe_settings, client)
    httpx.post(f"{stripe_settings.base}/_test/disputes/{dispute.stripe_id}/close", data={"status": outcome})
    deliver_webhooks(stripe_settings, client)
    status = Milestone.objects.get(pk=work.pk).status

    record_dispute(work, dispute_id=dispute.stripe_id, amount=dispute.amount_minor, status=outcome)

    assert Milestone.objects.get(pk=work.pk).status == status
    assert Notification.objects.filter(user=staff, event="dispute.closed").count() == 1
    assert ledger_problems() == []


@pytest.mark.parametrize(
    ("outcome", "status", "escrow", "note"),
    [
        ("won", "funded", 50_000, "card dispute won: the money is back in escrow"),
        ("lost", "refunded", 0, "card dispute lost: the cardholder keeps the money"),
    ],
)
def test_a_closed_chargeback_puts_the_money_where_the_network_decided(
    client, rubric, stripe_settings, staff, outcome, status, escrow, note
):
    from marketplace.models import Notification
    from payments.models import MilestoneEvent

    work, dispute = _charged_back(stripe_settings, client)

    httpx.post(f"{stripe_settings.base}/_test/disputes/{dispute.stripe_id}/close", data={"status": outcome})
    deliver_webhooks(stripe_settings, client)

    assert Milestone.objects.get(pk=work.pk).status == status
    assert Dispute.objects.get().status == outcome
    assert LedgerAccount.objects.get(code=f"escrow:milestone-{work.pk}:usd").balance == escrow
    assert ledger_problems() == []
    # The milestone's history says why it moved, and staff hear how the dispute ended.
    moved = MilestoneEvent.objects.filter(milestone=work).latest("pk")
    assert (moved.from_status, moved.to_status, moved.note) == ("charged_back", status, note)
    told = Notification.objects.filter(user=staff, event="dispute.closed").values_list("payload", flat=True)
    assert list(told) == [{"milestone_id": work.pk, "dispute_id": dispute.stripe_id, "won": outcome == "won"}]


def test_a_won_dispute_after_release_clears_the_platforms_exposure_and_is_booked_on_the_milestone(
    client, rubric, stripe_settings
):
    made = engagement()
    work = funded(stripe_settings, client, made, amount=150_000)
    services.milestone_submit(engineer=made.engineer, milestone_id=work.pk)
    services.milestone_approve(client=made.client, milestone_id=work.pk)
    httpx.post(f"{stripe_settings.base}/_test/charges/{work.charge_id}/dispute", data={"reason": "fraudulent"})
    deliver_webhooks(stripe_settings, client)
    dispute = Dispute.objects.get()

    httpx.post(f"{stripe_settings.base}/_test/disputes/{dispute.stripe_id}/close", data={"status": "won"})
    deliver_webhooks(stripe_settings, client)

    assert LedgerAccount.objects.get(code="dispute_exposure:platform:usd").balance == 0
    assert Milestone.objects.get(pk=work.pk).status == "released"
    assert ledger_problems() == []
    booked = LedgerTransaction.objects.filter(milestone=work).order_by("pk").values_list("kind", flat=True)
    assert list(booked) == ["fund", "release", "dispute", "dispute_won"]
    # Booked once per dispute: each reference names the dispute.
    assert LedgerTransaction.objects.get(kind="dispute").reference == f"dispute:{dispute.stripe_id}"
    assert LedgerTransaction.objects.get(kind="dispute_won").reference == f"dispute-won:{dispute.stripe_id}"


def test_a_dispute_first_seen_already_won_after_release_clears_the_exposure_it_opened(client, rubric, stripe_settings):

    made = engagement()
    work = funded(stripe_settings, client, made, amount=150_000)
    services.milestone_submit(engineer=made.engineer, milestone_id=work.pk)
    services.milestone_approve(client=made.client, milestone_id=work.pk)
    work.refresh_from_db()

    record_dispute(work, dispute_id="dp_late", amount=150_000, status="won")

    assert Dispute.objects.get(stripe_id="dp_late").platform_exposed is True
    assert LedgerAccount.objects.get(code="dispute_exposure:platform:usd").balance == 0
    assert LedgerAccount.objects.get(code=f"escrow:milestone-{work.pk}:usd").balance == 0
    assert ledger_problems() == []


def test_cancelling_a_milestone_cancels_its_payment_intent_so_it_cannot_be_paid(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()

    services.milestone_cancel(client=made.client, milestone_id=created.pk)

    intent = stripe_settings.double.objects["payment_intents"][created.payment_intent_id]
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "abandoned")
    assert Milestone.objects.get(pk=created.pk).status == "cancelled"
    with pytest.raises(stripe.InvalidRequestError, match=r"status is canceled"):
        pay_at_stripe(stripe_settings, created)
    assert stripe_settings.double.platform_balance.get("usd", 0) == 0
    assert ledger_problems() == []


def test_a_payment_that_beats_the_cancel_is_booked_and_refunded(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    httpx.post(f"{stripe_settings.base}/_test/webhooks/hold", data={"hold": "true"})
    pay_at_stripe(stripe_settings, created)  # the client paid; our books have not heard yet

    cancelled = services.milestone_cancel(client=made.client, milestone_id=created.pk)
    httpx.post(f"{stripe_settings.base}/_test/webhooks/release", data={"duplicates": "2"})
    deliver_webhooks(stripe_settings, client)

    charge = stripe_settings.double.objects["charges"][cancelled.charge_id]
    assert Milestone.objects.get(pk=created.pk).status == "refunded"
    assert charge["amount_refunded"] == 20_000
    assert sorted(LedgerTransaction.objects.values_list("kind", flat=True)) == ["fund", "refund"]
    assert ledger_problems() == []
    assert services.ledger_compare_with_stripe() == []


def test_an_event_that_failed_while_stripe_was_down_is_retried_until_it_lands(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made, 40_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    pay_at_stripe(stripe_settings, created)
    _store_webhooks(stripe_settings, client)
    stripe_mode(stripe_settings, "down")

    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(12):  # far more attempts than the old task's nine retries, over hours
            traveller.shift(timedelta(hours=1))
            services.stripe_events_retry()
        waiting = StripeEvent.objects.get(type="payment_intent.succeeded")
        still_funding = Milestone.objects.get(pk=created.pk).status
        stripe_mode(stripe_settings, "normal")
        traveller.shift(timedelta(hours=1))
        gateway.breaker.opened_at = None  # an hour on, the breaker's reset time (monotonic) has long passed
        services.stripe_events_retry()

    assert waiting.processed_at is None
    assert waiting.attempts >= 12
    assert waiting.next_attempt_at is not None
    assert still_funding == "awaiting_funding"
    assert StripeEvent.objects.get(pk=waiting.pk).processed_at is not None
    assert Milestone.objects.get(pk=created.pk).status == "funded"
    assert LedgerTransaction.objects.filter(kind="fund").count() == 1
    assert ledger_problems() == []


def test_a_stuck_event_is_reported_to_staff_once(client, rubric, stripe_settings, caplog):
    made = engagement()
    created = milestone(made, 40_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    pay_at_stripe(stripe_settings, created)
    _store_webhooks(stripe_settings, client)
    stripe_mode(stripe_settings, "down")

    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False), caplog.at_level(logging.ERROR):
        first = services.stripe_events_retry()
        second = services.stripe_events_retry()
        stuck = services.stripe_events_stuck().count()

    assert first["stuck"] >= 1
    assert second["stuck"] == 0
    assert stuck >= 1
    assert [r.message for r in caplog.records].count("stripe_event.stuck") == first["stuck"]


@pytest.mark.parametrize(("amount", "accepted"), [(1, False), (49, False), (50, True), (99_999_999, True)])
def test_milestone_amounts_outside_stripes_limits_are_refused_at_creation(client, rubric, amount, accepted):
    made = engagement(onboarded=False)
    client.force_login(made.client)

    response = post_json(
        client,
        f"/api/payments/engagements/{made.pk}/milestones",
        {"title": "Worker pool", "amount_minor": amount, "due_date": "2099-01-01"},
    )

    assert response.status_code == (201 if accepted else 422)
    assert Milestone.objects.count() == int(accepted)
    if not accepted:
        assert response.json()["code"] == "amount_out_of_range"


def test_a_hundred_million_dollars_is_refused(client, rubric):
    made = engagement(onboarded=False)
    client.force_login(made.client)

    response = post_json(
        client,
        f"/api/payments/engagements/{made.pk}/milestones",
        {"title": "Too much", "amount_minor": 10_000_000_000, "due_date": "2099-01-01"},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "amount_out_of_range"
    assert Milestone.objects.count() == 0


def test_an_idempotency_key_left_in_flight_by_a_dead_process_is_taken_over(client, rubric, stripe_settings, settings):
    made = engagement()
    created = milestone(made)
    url = f"/api/payments/milestones/{created.pk}/fund"
    parts = ["POST", url, {}]  # marketplace.idempotency.request_parts of the posts below
    IdempotencyRecord.objects.create(
        user=made.client,
        key="abandoned",
        fingerprint=fingerprint(parts),
        locked_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS + 1),
    )
    IdempotencyRecord.objects.create(user=made.client, key="running", fingerprint=fingerprint(parts))
    client.force_login(made.client)

    recovered = post_json(client, url, HTTP_IDEMPOTENCY_KEY="abandoned")
    still_running = post_json(client, url, HTTP_IDEMPOTENCY_KEY="running")

    assert recovered.status_code == 200
    assert recovered.json()["status"] == "awaiting_funding"
    assert IdempotencyRecord.objects.get(key="abandoned").status_code == 200
    assert still_running.status_code == 409
    assert still_running.json()["code"] == "idempotency_key_in_flight"
    assert still_running["Retry-After"] == "1"


def test_ledger_check_fails_on_money_captured_for_a_cancelled_milestone(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    services.milestone_cancel(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    call_command("ledger_check")
    # Plant the fault: Stripe says the PaymentIntent was captured after all.
    intent = stripe_settings.double.objects["payment_intents"][created.payment_intent_id]
    intent.update(status="succeeded", amount_received=intent["amount"])

    with pytest.raises(CommandError, match="1 ledger problem"):
        call_command("ledger_check")


def test_reconciliation_catches_up_with_a_payment_whose_events_were_all_lost(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    pay_at_stripe(stripe_settings, created)
    stripe_settings.drain()
    stripe_settings.collector.received.clear()  # every delivery lost, and Stripe thinks them delivered

    caught_up = services.catch_up_with_stripe()

    assert caught_up == 1
    assert Milestone.objects.get(pk=created.pk).status == "funded"
    assert services.ledger_compare_with_stripe() == []
    assert ledger_problems() == []


def test_the_catch_up_counts_every_milestone_and_week_it_books(client, rubric, stripe_settings):
    from payments.models import Timesheet
    from tests.payments.helpers import closed_week, hourly_engagement, save_card

    hourly = hourly_engagement()
    save_card(stripe_settings, client, hourly, "pm_card_authenticationRequired")  # delivers what came before
    failed = services.timesheet_approve(client=hourly.client, timesheet_id=closed_week(hourly, [120]).pk)
    stripe_settings.client.v1.payment_intents.confirm(failed.payment_intent_id)
    httpx.post(f"{stripe_settings.base}/_test/payment_intents/{failed.payment_intent_id}/authenticate", timeout=5)
    made = engagement()
    lost = []
    for _ in range(2):
        created = milestone(made)
        services.milestone_fund(client=made.client, milestone_id=created.pk)
        created.refresh_from_db()
        pay_at_stripe(stripe_settings, created)
        lost.append(created)
    stripe_settings.drain()
    stripe_settings.collector.received.clear()  # every delivery lost

    assert services.catch_up_with_stripe() == 3
    assert [Milestone.objects.get(pk=m.pk).status for m in lost] == ["funded", "funded"]
    assert Timesheet.objects.get(pk=failed.pk).status == "paid"
    assert services.catch_up_with_stripe() == 0
    assert ledger_problems() == []


def test_the_comparison_reads_each_released_milestones_own_payout_and_skips_a_cancelled_draft(
    client, rubric, stripe_settings
):
    from tests.payments.helpers import submitted

    made = engagement()
    for _ in range(2):
        work = submitted(stripe_settings, client, made)
        services.milestone_approve(client=made.client, milestone_id=work.pk)
    draft = milestone(made, 10_000)
    services.milestone_cancel(client=made.client, milestone_id=draft.pk)  # cancelled before Stripe heard of it

    assert Milestone.objects.get(pk=draft.pk).payment_intent_id == ""
    assert Milestone.objects.filter(engagement=made, status="released").count() == 2
    assert services.ledger_compare_with_stripe() == []
    assert services.catch_up_with_stripe() == 0


@pytest.mark.parametrize(("outcome", "status", "escrow"), [("won", "funded", 50_000), ("lost", "refunded", 0)])
def test_a_dispute_first_seen_already_closed_on_money_in_escrow_ends_where_the_network_decided(
    client, rubric, stripe_settings, staff, outcome, status, escrow
):

    from marketplace.models import Notification

    work = funded(stripe_settings, client, engagement())

    record_dispute(work, dispute_id="dp_late", amount=work.amount_minor, status=outcome)

    assert Milestone.objects.get(pk=work.pk).status == status
    assert LedgerAccount.objects.get(code=f"escrow:milestone-{work.pk}:usd").balance == escrow
    assert Notification.objects.filter(user=staff, event="dispute.closed").count() == 1
    assert ledger_problems() == []
