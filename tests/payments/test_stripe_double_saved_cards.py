"""The double's saved cards: a Customer, a SetupIntent for off-session use, and Stripe's test cards when charged later.

Through stripe-python's own client. The cards are Stripe's (https://docs.stripe.com/testing):
4242 4242 4242 4242 succeeds; 4000 0027 6000 3184 needs authentication on every payment, so
an off-session charge fails with `authentication_required`; 4000 0000 0000 0341 attaches to a
customer, and every charge on it is declined.
"""

import json
from typing import Any

import httpx
import pytest
import stripe

from tests.payments.conftest import DoubleRun
from tests.payments.test_stripe_double import FIXTURES, _same_shape


def saved_card(run: DoubleRun, card: str, *, number: bool = False) -> tuple[stripe.Customer, stripe.SetupIntent, str]:
    """A customer and the SetupIntent that saved `card` (a token, or a number with number=True), and its card's id."""
    customer = run.client.v1.customers.create(params={"email": "client@example.test"})
    setup = run.client.v1.setup_intents.create(
        params={"customer": customer.id, "usage": "off_session", "metadata": {"engagement_id": "7"}}
    )
    params: Any = (
        {"payment_method_data": {"type": "card", "card": {"number": card}}} if number else {"payment_method": card}
    )
    confirmed = run.client.v1.setup_intents.confirm(setup.id, params=params)
    return customer, confirmed, str(confirmed.payment_method)


def charge_off_session(
    run: DoubleRun, customer: str, payment_method: str, key: str = "timesheet-1"
) -> stripe.PaymentIntent:
    return run.client.v1.payment_intents.create(
        params={
            "amount": 29_333,
            "currency": "usd",
            "customer": customer,
            "payment_method": payment_method,
            "off_session": True,
            "confirm": True,
            "transfer_group": "timesheet-1",
            "metadata": {"timesheet_id": "1"},
        },
        options={"idempotency_key": key},
    )


def test_a_saved_visa_is_charged_off_session(stripe_double):
    customer, setup, card = saved_card(stripe_double, "pm_card_visa")

    intent = charge_off_session(stripe_double, customer.id, card)

    assert setup.status == "succeeded"
    method = stripe_double.client.v1.payment_methods.retrieve(card)
    assert (method.customer, method.card.last4) == (customer.id, "4242")
    assert (intent.status, intent.amount_received, intent.transfer_group) == ("succeeded", 29_333, "timesheet-1")
    stripe_double.drain()
    types = [event["type"] for event in stripe_double.collector.events()]
    assert types[:2] == ["payment_method.attached", "setup_intent.succeeded"]
    assert types[-2:] == ["charge.succeeded", "payment_intent.succeeded"]


def test_the_authentication_card_needs_3ds_to_save_and_fails_off_session(stripe_double):
    customer, setup, card = saved_card(stripe_double, "4000002760003184", number=True)
    assert setup.status == "requires_action"
    assert setup.next_action is not None
    assert setup.next_action.type == "use_stripe_sdk"
    httpx.post(f"{stripe_double.base}/_test/setup_intents/{setup.id}/authenticate")
    assert stripe_double.client.v1.setup_intents.retrieve(setup.id).status == "succeeded"

    with pytest.raises(stripe.CardError) as refused:
        charge_off_session(stripe_double, customer.id, card)

    assert refused.value.code == "authentication_required"
    (intent,) = stripe_double.client.v1.payment_intents.list().data
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == "authentication_required"
    assert intent.latest_charge is None  # nothing was charged
    # With the customer present (the link we send them), 3D Secure completes the same PaymentIntent.
    confirmed = stripe_double.client.v1.payment_intents.confirm(intent.id, params={"payment_method": card})
    assert confirmed.status == "requires_action"
    httpx.post(f"{stripe_double.base}/_test/payment_intents/{intent.id}/authenticate")
    assert stripe_double.client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_the_0341_card_saves_and_then_every_charge_is_declined(stripe_double):
    customer, setup, card = saved_card(stripe_double, "4000000000000341", number=True)
    assert setup.status == "succeeded"

    with pytest.raises(stripe.CardError) as declined:
        charge_off_session(stripe_double, customer.id, card)

    assert declined.value.code == "card_declined"
    (intent,) = stripe_double.client.v1.payment_intents.list().data
    assert intent.status == "requires_payment_method"
    charge = stripe_double.client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.paid, charge.status) == (False, "failed")
    stripe_double.drain()
    assert stripe_double.collector.events()[-1]["type"] == "payment_intent.payment_failed"


def test_a_retried_off_session_charge_with_its_key_is_charged_once(stripe_double):
    customer, _, card = saved_card(stripe_double, "pm_card_visa")

    first = charge_off_session(stripe_double, customer.id, card, key="timesheet-9-charge-0")
    again = charge_off_session(stripe_double, customer.id, card, key="timesheet-9-charge-0")

    assert first.id == again.id
    assert len(stripe_double.double.objects["charges"]) == 1


def test_another_customers_card_and_an_unknown_card_are_refused(stripe_double):
    _, _, card = saved_card(stripe_double, "pm_card_visa")
    stranger = stripe_double.client.v1.customers.create(params={})

    with pytest.raises(stripe.InvalidRequestError) as refused:
        charge_off_session(stripe_double, stranger.id, card)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        saved_card(stripe_double, "4000000000009999", number=True)

    assert refused.value.param == "payment_method"
    assert unknown.value.code == "resource_missing"
    assert len(stripe_double.double.objects["charges"]) == 0


@pytest.mark.skipif(not FIXTURES.exists(), reason="needs ../shared/stripe/fixtures3.json beside the checkout")
def test_setup_intents_and_payment_methods_have_stripes_fields_and_types(stripe_double):
    fixtures = json.loads(FIXTURES.read_text())["resources"]
    _, setup, card = saved_card(stripe_double, "pm_card_visa")
    double = stripe_double.double
    ours = {
        "setup_intent": double.objects["setup_intents"][setup.id],
        "payment_method": double.objects["payment_methods"][card],
    }

    problems = [p for name, obj in ours.items() for p in _same_shape(obj, fixtures[name], name)]

    assert problems == []
