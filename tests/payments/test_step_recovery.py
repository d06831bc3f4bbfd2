"""Steps that Stripe left unfinished are finished with what was claimed, once, and nothing is given up."""

import json
import logging
from datetime import timedelta

import httpx
import pytest

from marketplace.models import IdempotencyRecord
from payments import gateway, services
from payments.errors import PaymentRefused, PaymentsUnavailable
from payments.models import Milestone, PayoutAccount
from payments.selectors import ledger_problems
from tests.concurrency import race
from tests.factories import MilestoneFactory
from tests.payments.conftest import deliver_webhooks
from tests.payments.helpers import (
    after_a_stale_step,
    engagement,
    funded,
    milestone,
    pay_at_stripe,
    release_times_out,
    submitted,
)

pytestmark = pytest.mark.django_db


def test_a_replay_sends_what_was_claimed_even_if_the_fee_changed_since(client, rubric, stripe_settings, settings):
    made = engagement()
    left = release_times_out(stripe_settings, client, made, settings)
    settings.PLATFORM_FEE_BP = 500  # changed between the claim and the replay

    services.steps_resume(now=after_a_stale_step())

    transfers = list(stripe_settings.double.objects["transfers"].values())
    assert left.status == "releasing"
    assert Milestone.objects.get(pk=left.pk).status == "released"
    assert [t["amount"] for t in transfers] == [45_000]  # 10% as claimed, one Transfer
    assert ledger_problems() == []


def test_a_replay_pays_the_claimed_destination_even_if_payouts_were_switched_off(
    client, rubric, stripe_settings, settings
):
    made = engagement()
    left = release_times_out(stripe_settings, client, made, settings)
    PayoutAccount.objects.filter(engineer=made.engineer).update(payouts_enabled=False)

    assert services.steps_resume(now=after_a_stale_step()) == {"resumed": 1, "failed": 0}

    assert left.status == "releasing"
    assert Milestone.objects.get(pk=left.pk).status == "released"
    assert len(stripe_settings.double.objects["transfers"]) == 1


def test_an_idempotency_conflict_at_stripe_is_never_taken_for_nothing_happened(
    client, rubric, stripe_settings, settings, caplog
):
    made = engagement()
    left = release_times_out(stripe_settings, client, made, settings)
    Milestone.objects.filter(pk=left.pk).update(step_amount_minor=1)  # a replay that would differ

    with caplog.at_level(logging.ERROR):
        counts = services.steps_resume(now=after_a_stale_step())

    stuck = Milestone.objects.get(pk=left.pk)
    assert counts == {"resumed": 0, "failed": 1}
    assert (stuck.status, stuck.step_attempt) == ("releasing", 0)  # claimed still; no new key, no second Transfer
    assert len(stripe_settings.double.objects["transfers"]) == 1
    assert "stripe.idempotency_conflict" in [r.message for r in caplog.records]


def test_a_stuck_step_alerts_staff_once_not_every_minute(client, rubric, stripe_settings, settings, caplog):
    made = engagement()
    left = release_times_out(stripe_settings, client, made, settings)
    Milestone.objects.filter(pk=left.pk).update(step_amount_minor=1)

    with caplog.at_level(logging.ERROR):
        for minutes in range(3):
            services.steps_resume(now=after_a_stale_step() + timedelta(minutes=minutes))

    assert [r.message for r in caplog.records].count("payment_step.stuck") == 1
    assert Milestone.objects.get(pk=left.pk).step_failures == 3


def test_a_refund_owed_after_a_cancel_survives_an_open_breaker(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    httpx.post(f"{stripe_settings.base}/_test/webhooks/hold", data={"hold": "true"})
    pay_at_stripe(stripe_settings, created)
    real_refund = gateway.create_refund

    async def breaker_open(**kwargs):
        raise PaymentsUnavailable(sent=False)

    gateway.create_refund = breaker_open
    try:
        with pytest.raises(PaymentsUnavailable):
            services.milestone_cancel(client=made.client, milestone_id=created.pk)
    finally:
        gateway.create_refund = real_refund
    owed = Milestone.objects.get(pk=created.pk).status

    services.steps_resume(now=after_a_stale_step())

    assert owed == "refunding"  # never given back to "funded": nobody wants this money held
    assert Milestone.objects.get(pk=created.pk).status == "refunded"
    assert ledger_problems() == []


def test_a_cancel_that_never_reached_stripe_is_given_back(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    real_cancel = gateway.cancel_payment_intent

    async def bulkhead_full(*args, **kwargs):
        raise PaymentsUnavailable(sent=False)

    gateway.cancel_payment_intent = bulkhead_full
    try:
        with pytest.raises(PaymentsUnavailable):
            services.milestone_cancel(client=made.client, milestone_id=created.pk)
    finally:
        gateway.cancel_payment_intent = real_cancel

    assert Milestone.objects.get(pk=created.pk).status == "awaiting_funding"
    cancelled = services.milestone_cancel(client=made.client, milestone_id=created.pk)
    assert cancelled.status == "cancelled"


def test_a_refusal_tells_the_client_a_code_not_stripes_internals(client, rubric, stripe_settings):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    stripe_settings.double.account_balance.clear()
    stripe_settings.double.platform_balance.clear()  # Stripe refuses the Transfer: no funds
    client.force_login(made.client)

    response = client.post(f"/api/payments/milestones/{work.pk}/approve", "{}", content_type="application/json")

    assert response.status_code == 402
    assert response.json()["code"] == "payment_refused"
    assert "milestone-" not in response.json()["detail"]
    assert Milestone.objects.get(pk=work.pk).status == "submitted"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "engagements/{engagement}/milestones",
            {"title": "nul\x00title", "amount_minor": 5_000, "due_date": "2099-01-01"},
        ),
        ("milestones/{milestone}/dispute", {"reason": "bad\x00reason"}),
    ],
)
def test_nul_characters_are_refused_with_422_not_a_500(client, rubric, path, body):
    work = MilestoneFactory.create(status="submitted")
    made = work.engagement
    client.force_login(made.client)
    before = Milestone.objects.count()

    response = client.post(
        "/api/payments/" + path.format(engagement=made.pk, milestone=work.pk),
        json.dumps(body),
        content_type="application/json",
    )

    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]
    assert Milestone.objects.count() == before
    assert Milestone.objects.get(pk=work.pk).status == "submitted"


@pytest.mark.django_db(transaction=True)
def test_one_idempotency_key_raced_by_failing_requests_never_answers_500(rubric, stripe_settings):
    from asgiref.sync import async_to_sync

    from marketplace.idempotency import aidempotent

    made = engagement()
    draft = milestone(made)

    async def refund_a_draft():
        await services.amilestone_refund(client=made.client, milestone_id=draft.pk)
        return 200, {}

    def attempt():
        return async_to_sync(aidempotent)(user=made.client, key="same", fingerprint_of=["refund"], run=refund_a_draft)

    outcomes = race(*[attempt] * 20)

    assert {type(o).__name__ for o in outcomes} <= {"MilestoneStateConflict", "IdempotencyKeyInFlight"}
    assert not IdempotencyRecord.objects.filter(key="same", status_code=None).exists()


def test_settling_a_charged_back_milestone_is_refused(client, rubric, stripe_settings, staff):
    made = engagement()
    work = funded(stripe_settings, client, made)
    httpx.post(f"{stripe_settings.base}/_test/charges/{work.charge_id}/dispute")
    deliver_webhooks(stripe_settings, client)

    with pytest.raises(Exception, match="Only a disputed milestone is settled"):
        services.milestone_settle(staff=staff, milestone_id=work.pk, engineer_share_minor=1_000)

    assert stripe_settings.double.objects["transfers"] == {}
    assert PaymentRefused.code == "payment_refused"
