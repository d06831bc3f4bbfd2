"""Stripe slow or down, Idempotency-Key on our API, and who may see which milestone."""

import asyncio
import logging
from functools import partial

import httpx
import pytest
from asgiref.sync import async_to_sync
from prometheus_client import REGISTRY

from payments import gateway, services
from payments.errors import PaymentRefused
from payments.models import LedgerTransaction, Milestone
from payments.selectors import ledger_problems
from payments.services import ledger
from tests.api_calls import post_json
from tests.factories import ClientFactory, StaffFactory, vetted_engineer
from tests.payments.conftest import deliver_webhooks
from tests.payments.helpers import after_a_stale_step, engagement, funded, milestone, pay_at_stripe, submitted

pytestmark = pytest.mark.django_db


def test_stripe_down_answers_503_and_the_sweep_finishes_the_payout_once(client, rubric, stripe_settings):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    httpx.post(f"{stripe_settings.base}/_test/mode", data={"mode": "down"})
    client.force_login(made.client)

    response = post_json(client, f"/api/payments/milestones/{work.pk}/approve")

    assert response.status_code == 503
    assert response.json()["code"] == "payments_unavailable"
    assert int(response["Retry-After"]) >= 1
    # Stripe answered 5xx: it may have acted. The step stays claimed, to be replayed under its key.
    assert Milestone.objects.get(pk=work.pk).status == "releasing"
    assert stripe_settings.double.objects["transfers"] == {}
    assert ledger_problems() == []

    httpx.post(f"{stripe_settings.base}/_test/mode", data={"mode": "normal"})
    assert services.steps_resume(now=after_a_stale_step()) == {"resumed": 1, "failed": 0}
    assert services.steps_resume(now=after_a_stale_step()) == {"resumed": 0, "failed": 0}

    assert Milestone.objects.get(pk=work.pk).status == "released"
    assert len(stripe_settings.double.objects["transfers"]) == 1
    assert ledger_problems() == []


def test_the_breaker_opens_fails_fast_and_recovers(client, rubric, stripe_settings, settings):
    settings.STRIPE_BREAKER_FAILURES = 2
    settings.STRIPE_BREAKER_RESET_SECONDS = 1
    settings.STRIPE_TIMEOUT_SECONDS = 0.2
    gateway.reset()
    made = engagement()
    first, second, third = (submitted(stripe_settings, client, made) for _ in range(3))
    clock = [0.0]
    gateway.breaker.clock = lambda: clock[0]
    httpx.post(f"{stripe_settings.base}/_test/mode", data={"mode": "slow", "delay_seconds": "3"})
    client.force_login(made.client)
    failing = [post_json(client, f"/api/payments/milestones/{m.pk}/approve").status_code for m in (first, second)]
    calls_before = len(stripe_settings.double.requests)

    fast = post_json(client, f"/api/payments/milestones/{third.pk}/approve")
    calls_after = len(stripe_settings.double.requests)
    untouched = Milestone.objects.get(pk=third.pk).status
    httpx.post(f"{stripe_settings.base}/_test/mode", data={"mode": "normal"})
    clock[0] = 2.0
    recovered = post_json(client, f"/api/payments/milestones/{third.pk}/approve")
    services.steps_resume(now=after_a_stale_step())

    assert failing == [503, 503]
    assert fast.status_code == 503
    assert calls_after == calls_before  # open: Stripe was not even asked
    assert untouched == "submitted"  # nothing was sent, so the approval was given back
    assert recovered.json()["status"] == "released"
    assert gateway.breaker.state == "closed"
    assert set(Milestone.objects.values_list("status", flat=True)) == {"released"}
    assert len(stripe_settings.double.objects["transfers"]) == 3
    assert ledger_problems() == []


def test_a_crash_between_stripes_answer_and_our_write_is_finished_by_the_sweep(
    client, rubric, stripe_settings, monkeypatch
):
    made = engagement()
    work = submitted(stripe_settings, client, made)

    def killed(milestone):
        raise RuntimeError("worker killed after the transfer")

    monkeypatch.setattr(ledger, "book_release", killed)
    with pytest.raises(RuntimeError):
        services.milestone_approve(client=made.client, milestone_id=work.pk)
    monkeypatch.undo()
    assert Milestone.objects.get(pk=work.pk).status == "releasing"
    retried = post_as(client, made.client, f"/api/payments/milestones/{work.pk}/approve")

    services.steps_resume(now=after_a_stale_step())

    assert retried.status_code == 409  # the payout is in flight: a second approval cannot start another
    assert Milestone.objects.get(pk=work.pk).status == "released"
    assert len(stripe_settings.double.objects["transfers"]) == 1  # the same idempotency key: one Transfer
    assert LedgerTransaction.objects.filter(kind="release").count() == 1
    assert ledger_problems() == []


def post_as(client, user, path, body=None):
    client.force_login(user)
    return post_json(client, path, body)


def test_idempotency_key_replays_the_first_answer(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made)
    client.force_login(made.client)
    url = f"/api/payments/milestones/{created.pk}/fund"

    first = post_json(client, url, HTTP_IDEMPOTENCY_KEY="fund-1")
    again = post_json(client, url, HTTP_IDEMPOTENCY_KEY="fund-1")
    other_body = post_json(client, url, {"note": "different"}, HTTP_IDEMPOTENCY_KEY="fund-1")

    assert first.json() == again.json()
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert other_body.status_code == 409
    assert other_body.json()["code"] == "idempotency_key_reused"
    assert len(stripe_settings.double.objects["payment_intents"]) == 1


def test_reconciliation_fetches_events_stripe_could_not_deliver(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    stripe_settings.collector.status = 500  # our endpoint "down": every delivery fails
    stripe_settings.client.v1.payment_intents.confirm(
        created.payment_intent_id, params={"payment_method": "pm_card_visa"}
    )
    stripe_settings.drain()

    missing = services.stripe_events_reconcile()
    from payments.models import StripeEvent

    for event in StripeEvent.objects.filter(processed_at=None):
        services.stripe_event_process(event_id=event.pk)

    assert missing >= 2
    assert Milestone.objects.get(pk=created.pk).status == "funded"
    assert LedgerTransaction.objects.filter(kind="fund").count() == 1


def test_reconciliation_counts_what_was_missing_and_queues_each_unprocessed_event_once(
    client, rubric, stripe_settings, monkeypatch
):
    from payments import tasks
    from payments.models import StripeEvent

    made = engagement()
    created = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    stripe_settings.collector.status = 500
    pay_at_stripe(stripe_settings, created)
    stripe_settings.drain()
    undelivered = {event.id for event in async_to_sync(gateway.undelivered_events)()}
    queued: list[int] = []
    monkeypatch.setattr(tasks.process_stripe_event, "delay_on_commit", queued.append)

    missing = services.stripe_events_reconcile()

    stored = dict(StripeEvent.objects.filter(stripe_id__in=undelivered).values_list("stripe_id", "pk"))
    assert missing == len(undelivered) == len(stored) == 2
    assert sorted(queued) == sorted(stored.values())
    # Processed, they are neither missing nor queued again, though Stripe still lists them as undelivered.
    for event_id in stored.values():
        services.stripe_event_process(event_id=event_id)
    queued.clear()
    assert services.stripe_events_reconcile() == 0
    assert queued == []


def timed_calls(operation: str, outcome: str) -> float:
    labels = {"operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("vetted_stripe_call_duration_seconds_count", labels) or 0.0


def test_reconciliation_asks_stripe_for_exactly_the_events_it_could_not_deliver(client, rubric, stripe_settings):
    made = engagement()
    funded(stripe_settings, client, made)  # its events reached us
    later = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=later.pk)
    later.refresh_from_db()
    stripe_settings.collector.status = 500
    seen_before = len(stripe_settings.collector.received)
    pay_at_stripe(stripe_settings, later)
    stripe_settings.drain()
    failed = {event["id"] for event in stripe_settings.collector.events()[seen_before:]}
    listed_before = timed_calls("events.list", "ok")

    undelivered = async_to_sync(gateway.undelivered_events)()

    assert len(failed) == 2
    assert {event.id for event in undelivered} == failed
    assert timed_calls("events.list", "ok") == listed_before + 1


@pytest.mark.parametrize(
    ("call", "operation"),
    [
        (gateway.retrieve_setup_intent, "setup_intent.retrieve"),
        (gateway.retrieve_payment_method, "payment_method.retrieve"),
        (gateway.retrieve_payment_intent, "payment_intent.retrieve"),
        (gateway.retrieve_transfer, "transfer.retrieve"),
        (gateway.retrieve_refund, "refund.retrieve"),
        (gateway.retrieve_dispute, "dispute.retrieve"),
        (gateway.retrieve_account, "account.retrieve"),
        (partial(gateway.cancel_payment_intent, key="cancel-1"), "payment_intent.cancel"),
        (
            partial(gateway.confirm_payment_intent, payment_method="pm_card_visa", key="confirm-1"),
            "payment_intent.confirm",
        ),
    ],
)
def test_every_stripe_call_is_timed_under_its_own_operation(stripe_settings, call, operation):
    before = timed_calls(operation, "refused")

    with pytest.raises(PaymentRefused):
        async_to_sync(call)("missing_1")

    assert timed_calls(operation, "refused") == before + 1


def test_a_cancel_retried_with_the_same_key_gets_the_first_answer_not_a_refusal(rubric, stripe_settings):
    made = engagement()
    created = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    cancel = async_to_sync(gateway.cancel_payment_intent)

    first = cancel(created.payment_intent_id, key=f"cancel-{created.pk}")
    again = cancel(created.payment_intent_id, key=f"cancel-{created.pk}")  # the answer to the first was lost

    assert (first.id, first.status) == (again.id, again.status) == (created.payment_intent_id, "canceled")


async def test_closing_the_stripe_client_at_shutdown_closes_this_loops_connections_once():
    gateway._client()
    http = gateway._clients[asyncio.get_running_loop()][1]

    await gateway.aclose()
    await gateway.aclose()  # a second shutdown hook finds nothing to close

    assert asyncio.get_running_loop() not in gateway._clients
    assert http._client_async.is_closed


@pytest.mark.parametrize("outsider", ["client", "engineer"])
def test_people_outside_the_engagement_get_404_and_change_nothing(client, rubric, stripe_settings, outsider):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    stranger = ClientFactory.create() if outsider == "client" else vetted_engineer()
    client.force_login(stranger)
    before = Milestone.objects.values().get(pk=work.pk)

    responses = [
        client.get(f"/api/payments/milestones/{work.pk}"),
        post_json(client, f"/api/payments/milestones/{work.pk}/approve"),
        post_json(client, f"/api/payments/milestones/{work.pk}/refund"),
        post_json(client, f"/api/payments/milestones/{work.pk}/dispute", {"reason": "not mine"}),
        post_json(client, f"/api/payments/milestones/{work.pk}/submit"),
        post_json(
            client,
            f"/api/payments/engagements/{made.pk}/milestones",
            {"title": "Sneaky", "amount_minor": 1, "due_date": "2099-01-01"},
        ),
    ]
    listed = client.get(f"/api/payments/engagements/{made.pk}/milestones")

    assert [r.status_code for r in responses] == [404, 404, 404, 404, 404, 404]
    assert (listed.status_code, listed.json()["code"]) == (404, "engagement_not_found")
    assert Milestone.objects.values().get(pk=work.pk) == before
    assert Milestone.objects.count() == 1


def test_staff_see_an_engagement_s_milestones_like_its_members(client, rubric, stripe_settings):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    client.force_login(StaffFactory.create())

    listed = client.get(f"/api/payments/engagements/{made.pk}/milestones")
    missing = client.get("/api/payments/engagements/999999/milestones")

    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["items"]] == [work.pk]
    assert missing.status_code == 404


def test_the_engineer_cannot_approve_their_own_work(client, rubric, stripe_settings):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    client.force_login(made.engineer)

    response = post_json(client, f"/api/payments/milestones/{work.pk}/approve")

    assert response.status_code == 403
    assert Milestone.objects.get(pk=work.pk).status == "submitted"


def test_a_captured_amount_that_differs_from_the_milestone_is_a_difference(client, rubric, stripe_settings):
    made = engagement()
    work = funded(stripe_settings, client, made)
    assert services.ledger_compare_with_stripe() == []

    intent = stripe_settings.double.objects["payment_intents"][work.payment_intent_id]
    intent["amount_received"] = work.amount_minor - 1  # succeeded, for less than the ledger holds

    assert services.ledger_compare_with_stripe() == [
        f"milestone {work.pk}: Stripe's PaymentIntent is succeeded for {work.amount_minor - 1}, "
        f"the ledger holds {work.amount_minor}"
    ]


def test_a_transfer_reversed_at_stripe_but_not_in_the_ledger_is_a_difference_and_logged(
    client, rubric, stripe_settings, caplog
):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    released = services.milestone_approve(client=made.client, milestone_id=work.pk)
    transfer = stripe_settings.double.objects["transfers"][released.transfer_id]
    paid = transfer["amount"]

    transfer["amount_reversed"] = 1_000
    with caplog.at_level(logging.ERROR, logger="payments.services.reconciliation"):
        differences = services.ledger_compare_with_stripe()

    expected = (
        f"milestone {work.pk}: Stripe's Transfer {released.transfer_id} is {paid - 1_000}, the ledger paid {paid}"
    )
    assert differences == [expected]
    logged = [(r.message, getattr(r, "difference", None)) for r in caplog.records if r.name.endswith("reconciliation")]
    assert logged == [("reconcile.difference", expected)]


def test_a_pending_refund_is_no_difference_and_a_dispute_amount_is(client, rubric, stripe_settings):
    from payments.models import Dispute

    made = engagement()
    paid = funded(stripe_settings, client, made)
    refunded = services.milestone_refund(client=made.client, milestone_id=paid.pk)
    stripe_settings.double.objects["refunds"][refunded.refund_id]["status"] = "pending"  # Stripe still settling it
    disputed = funded(stripe_settings, client, made)
    httpx.post(f"{stripe_settings.base}/_test/charges/{disputed.charge_id}/dispute", data={"reason": "fraudulent"})
    deliver_webhooks(stripe_settings, client)
    dispute = Dispute.objects.get()
    assert services.ledger_compare_with_stripe() == []

    Dispute.objects.filter(pk=dispute.pk).update(amount_minor=dispute.amount_minor - 1)

    assert services.ledger_compare_with_stripe() == [
        f"dispute {dispute.stripe_id}: Stripe says {dispute.amount_minor}, we recorded {dispute.amount_minor - 1}"
    ]


@pytest.mark.parametrize(("change", "status", "amount"), [("amount", "succeeded", 1), ("status", "failed", None)])
def test_a_refund_that_differs_or_failed_at_stripe_is_a_difference(
    client, rubric, stripe_settings, change, status, amount
):
    made = engagement()
    paid = funded(stripe_settings, client, made)
    refunded = services.milestone_refund(client=made.client, milestone_id=paid.pk)
    assert services.ledger_compare_with_stripe() == []

    at_stripe = stripe_settings.double.objects["refunds"][refunded.refund_id]
    at_stripe[change] = amount if change == "amount" else status

    assert services.ledger_compare_with_stripe() == [
        f"milestone {paid.pk}: Stripe's Refund {refunded.refund_id} is {status} for {amount or paid.amount_minor}, "
        f"the ledger refunded {paid.amount_minor}"
    ]


def test_the_ledger_is_compared_with_stripe(client, rubric, stripe_settings):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    released = services.milestone_approve(client=made.client, milestone_id=work.pk)
    assert services.ledger_compare_with_stripe() == []

    stripe_settings.double.objects["transfers"][released.transfer_id]["amount"] = 1  # Stripe and we now disagree

    differences = services.ledger_compare_with_stripe()
    assert len(differences) == 1
    assert f"milestone {work.pk}: Stripe's Transfer" in differences[0]
