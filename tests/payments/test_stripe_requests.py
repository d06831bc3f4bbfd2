"""What each escrow step asks Stripe, under which idempotency key, and what it writes in the milestone's history.

The keys are `milestone-<id>-<step>-<attempt>` (docs/payments.md): the same step retried, by a client or
by the sweep, sends the same key and Stripe answers it once; a new attempt after a refusal sends a new one.
A settlement's Transfer carries the engineer's share less the fee and is funded by the milestone's own
charge (`source_transaction`, https://docs.stripe.com/connect/separate-charges-and-transfers); the rest of
the charge is refunded.
"""

import json

import pytest

from payments import services
from payments.models import Milestone, MilestoneEvent, PayoutAccount
from payments.services import ledger
from tests.payments.helpers import disputed, engagement, funded, milestone, onboard, submitted

pytestmark = pytest.mark.django_db


def asked(run, work: Milestone) -> dict[str, tuple[str, str, dict[str, object]]]:
    """Every request the double received under one of `work`'s keys: key -> (method, path, form params)."""
    prefix = f"milestone-{work.pk}-"
    return {
        key: tuple(json.loads(fingerprint))
        for key, (fingerprint, _status, _payload) in run.double.idempotency.items()
        if key.startswith(prefix)
    }


def notes(work: Milestone) -> list[tuple[str, str]]:
    return list(MilestoneEvent.objects.filter(milestone=work).order_by("pk").values_list("to_status", "note"))


def test_a_split_settlement_transfers_the_share_less_the_fee_from_its_charge_and_refunds_the_rest(
    client, rubric, stripe_settings, staff
):
    made = engagement()
    paid = disputed(stripe_settings, client, made)
    destination = PayoutAccount.objects.get(engineer=made.engineer).stripe_account_id

    settled = services.milestone_settle(staff=staff, milestone_id=paid.pk, engineer_share_minor=30_000)

    transfer = (
        "POST",
        "/v1/transfers",
        {
            "amount": str(30_000 - ledger.fee_for(30_000)),
            "currency": "usd",
            "destination": destination,
            "source_transaction": paid.charge_id,
            "transfer_group": f"milestone-{paid.pk}",
        },
    )
    refund = ("POST", "/v1/refunds", {"amount": "20000", "payment_intent": paid.payment_intent_id})
    assert {key: value for key, value in asked(stripe_settings, paid).items() if "settle" in key} == {
        f"milestone-{paid.pk}-settle-transfer-0": transfer,
        f"milestone-{paid.pk}-settle-refund-0": refund,
    }
    assert settled.status == "released"
    assert stripe_settings.double.objects["refunds"][settled.refund_id]["amount"] == 20_000
    assert notes(paid)[-1] == ("released", "settled: 30000 to the engineer, 20000 refunded")


def test_a_settlement_all_to_the_client_is_one_refund_and_no_transfer(client, rubric, stripe_settings, staff):
    paid = disputed(stripe_settings, client, engagement())

    settled = services.milestone_settle(staff=staff, milestone_id=paid.pk, engineer_share_minor=0)

    settle_requests = {key: value for key, value in asked(stripe_settings, paid).items() if "settle" in key}
    assert settle_requests == {
        f"milestone-{paid.pk}-settle-refund-0": (
            "POST",
            "/v1/refunds",
            {"amount": "50000", "payment_intent": paid.payment_intent_id},
        )
    }
    assert (settled.status, settled.transfer_id) == ("refunded", "")
    assert stripe_settings.double.objects["refunds"][settled.refund_id]["amount"] == 50_000
    assert notes(paid)[-1] == ("refunded", "settled: 0 to the engineer, 50000 refunded")


def test_a_settlement_all_to_the_engineer_is_one_transfer_and_no_refund(client, rubric, stripe_settings, staff):
    paid = disputed(stripe_settings, client, engagement())

    settled = services.milestone_settle(staff=staff, milestone_id=paid.pk, engineer_share_minor=50_000)

    settle_keys = sorted(key for key in asked(stripe_settings, paid) if "settle" in key)
    assert settle_keys == [f"milestone-{paid.pk}-settle-transfer-0"]
    assert (settled.status, settled.refund_id, settled.refunded_at) == ("released", "", None)
    assert stripe_settings.double.objects["transfers"][settled.transfer_id]["amount"] == 50_000 - ledger.fee_for(50_000)
    assert notes(paid)[-1] == ("released", "settled: 50000 to the engineer, 0 refunded")


def test_a_client_refund_asks_for_the_whole_amount_under_its_key(client, rubric, stripe_settings):
    made = engagement()
    paid = funded(stripe_settings, client, made)

    refunded = services.milestone_refund(client=made.client, milestone_id=paid.pk)

    assert asked(stripe_settings, paid)[f"milestone-{paid.pk}-refund-0"] == (
        "POST",
        "/v1/refunds",
        {"amount": "50000", "payment_intent": paid.payment_intent_id},
    )
    assert refunded.status == "refunded"


def test_a_cancel_before_payment_cancels_the_payment_intent_and_says_so(rubric, stripe_settings):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()

    cancelled = services.milestone_cancel(client=made.client, milestone_id=created.pk)

    assert asked(stripe_settings, created) == {
        f"milestone-{created.pk}-fund-0": (
            "POST",
            "/v1/payment_intents",
            {
                "amount": "20000",
                "capture_method": "automatic",
                "currency": "usd",
                "metadata": {"milestone_id": str(created.pk)},
                "transfer_group": f"milestone-{created.pk}",
            },
        ),
        f"milestone-{created.pk}-cancel-0": (
            "POST",
            f"/v1/payment_intents/{created.payment_intent_id}/cancel",
            {"cancellation_reason": "abandoned"},
        ),
    }
    assert cancelled.status == "cancelled"
    assert notes(created)[-1] == ("cancelled", "PaymentIntent cancelled at Stripe")


def test_an_approval_releases_the_amount_less_the_fee_under_the_release_key_in_the_clients_name(
    client, rubric, stripe_settings
):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    destination = PayoutAccount.objects.get(engineer=made.engineer).stripe_account_id

    released = services.milestone_approve(client=made.client, milestone_id=work.pk)

    assert asked(stripe_settings, work)[f"milestone-{work.pk}-release-0"] == (
        "POST",
        "/v1/transfers",
        {
            "amount": str(50_000 - ledger.fee_for(50_000)),
            "currency": "usd",
            "destination": destination,
            "source_transaction": work.charge_id,
            "transfer_group": f"milestone-{work.pk}",
        },
    )
    assert released.status == "released"
    releasing = MilestoneEvent.objects.get(milestone=work, to_status="releasing")
    assert releasing.actor_id == made.client.pk


def test_a_release_pays_this_engagements_engineer_and_only_once_their_payouts_are_enabled(
    client, rubric, stripe_settings
):
    from payments.services import payout_onboarding_start

    engagement()  # another engineer, onboarded first: their account must not be paid
    made = engagement(onboarded=False)
    payout_onboarding_start(engineer=made.engineer, return_url="http://127.0.0.1:8000/")  # started, not finished
    work = submitted(stripe_settings, client, made)

    waiting = services.milestone_approve(client=made.client, milestone_id=work.pk)
    onboard(made.engineer)
    released = services.milestone_release_pending(milestone_id=work.pk)

    assert waiting.status == "approved"
    own = PayoutAccount.objects.get(engineer=made.engineer).stripe_account_id
    assert asked(stripe_settings, work)[f"milestone-{work.pk}-release-0"][2]["destination"] == own
    assert released.status == "released"
