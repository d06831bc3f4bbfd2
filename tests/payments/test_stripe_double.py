"""The Stripe double, through stripe-python's own client with only the API base changed."""

import json
from pathlib import Path

import httpx
import pytest
import stripe

from tests.payments.conftest import SECRET, DoubleRun

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "stripe" / "fixtures3.json"


def pay(
    run: DoubleRun, amount: int = 5_000, card: str = "pm_card_visa", key: str | None = None
) -> stripe.PaymentIntent:
    options: stripe.RequestOptions = {"idempotency_key": key} if key else {}
    intent = run.client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "transfer_group": "milestone_7",
            "metadata": {"milestone_id": "7"},
        },
        options=options,
    )
    return run.client.v1.payment_intents.confirm(intent.id, params={"payment_method": card})


def onboarded_account(run: DoubleRun) -> str:
    account = run.client.v1.accounts.create(params={"type": "express", "email": "ada@example.test"})
    link = run.client.v1.account_links.create(
        params={
            "account": account.id,
            "refresh_url": "https://x.test/r",
            "return_url": "https://x.test/d",
            "type": "account_onboarding",
        }
    )
    httpx.get(link.url, timeout=5)  # the engineer finishing onboarding
    return account.id


def test_a_payment_intent_succeeds_with_its_transfer_group_and_metadata(stripe_double):
    intent = pay(stripe_double)

    assert (intent.status, intent.amount_received, intent.transfer_group) == ("succeeded", 5_000, "milestone_7")
    assert intent.metadata["milestone_id"] == "7"
    assert intent.latest_charge is not None
    assert stripe_double.client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_a_declined_card_is_a_card_error(stripe_double):
    with pytest.raises(stripe.CardError) as declined:
        pay(stripe_double, card="pm_card_chargeDeclined")

    assert declined.value.code == "card_declined"


def test_same_idempotency_key_same_parameters_same_response(stripe_double):
    params = {"amount": 1_000, "currency": "usd"}
    first = stripe_double.client.v1.payment_intents.create(params=params, options={"idempotency_key": "k-1"})
    again = stripe_double.client.v1.payment_intents.create(params=params, options={"idempotency_key": "k-1"})

    assert again.id == first.id
    assert len(stripe_double.double.objects["payment_intents"]) == 1


def test_same_idempotency_key_other_parameters_is_an_error(stripe_double):
    stripe_double.client.v1.payment_intents.create(
        params={"amount": 1_000, "currency": "usd"}, options={"idempotency_key": "k-2"}
    )

    with pytest.raises(stripe.IdempotencyError):
        stripe_double.client.v1.payment_intents.create(
            params={"amount": 2_000, "currency": "usd"}, options={"idempotency_key": "k-2"}
        )

    assert len(stripe_double.double.objects["payment_intents"]) == 1


def test_partial_and_full_refunds_and_an_over_refund_is_refused(stripe_double):
    intent = pay(stripe_double, 5_000)

    partial = stripe_double.client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 2_000})
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_double.client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 3_001})
    rest = stripe_double.client.v1.refunds.create(params={"payment_intent": intent.id})

    assert (partial.amount, rest.amount) == (2_000, 3_000)
    assert too_much.value.code == "amount_too_large"
    assert stripe_double.client.v1.charges.retrieve(intent.latest_charge).refunded is True


def test_onboarding_through_the_account_link_enables_payouts(stripe_double):
    account_id = onboarded_account(stripe_double)

    assert stripe_double.client.v1.accounts.retrieve(account_id).payouts_enabled is True


def test_transfers_use_the_source_transaction_and_reversals_need_balance(stripe_double):
    intent = pay(stripe_double, 10_000)
    account_id = onboarded_account(stripe_double)

    transfer = stripe_double.client.v1.transfers.create(
        params={
            "amount": 9_000,
            "currency": "usd",
            "destination": account_id,
            "source_transaction": intent.latest_charge,
            "transfer_group": "milestone_7",
        }
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_double.client.v1.transfers.create(
            params={
                "amount": 1_001,
                "currency": "usd",
                "destination": account_id,
                "source_transaction": intent.latest_charge,
            }
        )
    reversal = stripe_double.client.v1.transfers.reversals.create(transfer.id, params={"amount": 4_000})
    with pytest.raises(stripe.InvalidRequestError) as short:
        stripe_double.client.v1.transfers.reversals.create(transfer.id, params={"amount": 5_001})

    assert (transfer.amount, transfer.source_transaction) == (9_000, intent.latest_charge)
    assert reversal.amount == 4_000
    assert short.value.code == "balance_insufficient"


def test_webhooks_are_signed_exactly_as_stripe_signs_them(stripe_double):
    intent = pay(stripe_double)
    stripe_double.drain()

    types = []
    for body, signature in stripe_double.collector.received:
        event = stripe.Webhook.construct_event(body.decode(), signature, SECRET)
        types.append(event.type)

    assert types == ["charge.succeeded", "payment_intent.succeeded"]
    assert stripe_double.collector.events()[1]["data"]["object"]["id"] == intent.id


def test_failed_deliveries_are_retried_and_listed_as_undelivered(stripe_double):
    stripe_double.collector.status = 500

    pay(stripe_double)
    stripe_double.drain()
    undelivered = stripe_double.client.v1.events.list(params={"delivery_success": False})

    assert len(stripe_double.collector.received) == 2 * 3  # two events, three attempts each
    assert [e.type for e in undelivered.data] == ["payment_intent.succeeded", "charge.succeeded"]


@pytest.mark.parametrize("params", [{"limit": 101}, {"limit": 0}, {"delivery_succes": False}])
def test_the_event_list_refuses_a_limit_outside_1_to_100_and_an_unknown_parameter(stripe_double, params):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_double.client.v1.events.list(params=params)

    assert refused.value.http_status == 400
    assert refused.value.param in {"limit", "delivery_succes"}


@pytest.mark.parametrize("resource", ["payment_intents", "transfers", "events"])
@pytest.mark.parametrize("limit", [0, 101])
def test_every_list_refuses_a_limit_outside_1_to_100(stripe_double, resource, limit):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        getattr(stripe_double.client.v1, resource).list(params={"limit": limit})

    assert (refused.value.http_status, refused.value.param) == (400, "limit")


def test_held_webhooks_can_be_released_duplicated_and_out_of_order(stripe_double):
    httpx.post(f"{stripe_double.base}/_test/webhooks/hold", data={"hold": "true"})
    pay(stripe_double)

    httpx.post(f"{stripe_double.base}/_test/webhooks/release", data={"order": "reverse", "duplicates": "2"})
    stripe_double.drain()

    assert [e["type"] for e in stripe_double.collector.events()] == [
        "payment_intent.succeeded",
        "payment_intent.succeeded",
        "charge.succeeded",
        "charge.succeeded",
    ]


def test_a_dispute_through_the_test_hook(stripe_double):
    intent = pay(stripe_double)

    dispute = httpx.post(f"{stripe_double.base}/_test/charges/{intent.latest_charge}/dispute").json()
    stripe_double.drain()

    assert dispute["charge"] == intent.latest_charge
    assert stripe_double.collector.events()[-1]["type"] == "charge.dispute.created"


def test_down_and_slow_modes_for_resilience_tests(stripe_double):
    httpx.post(f"{stripe_double.base}/_test/mode", data={"mode": "down"})

    with pytest.raises(stripe.APIError):
        stripe_double.client.v1.customers.create(params={"email": "a@b.test"})

    httpx.post(f"{stripe_double.base}/_test/mode", data={"mode": "normal"})
    assert stripe_double.client.v1.customers.create(params={"email": "a@b.test"}).email == "a@b.test"


def _json_type(value: object) -> str:
    return type(value).__name__


def _same_shape(ours: dict[str, object], theirs: dict[str, object], where: str) -> list[str]:
    """Every field of Stripe's example is present, with the same JSON type unless either side is null."""
    problems = []
    for key, expected in theirs.items():
        if key not in ours:
            problems.append(f"{where}.{key} missing")
            continue
        actual = ours[key]
        if actual is None or expected is None:
            continue
        if _json_type(actual) != _json_type(expected):
            problems.append(f"{where}.{key}: {_json_type(actual)} != {_json_type(expected)}")
    problems += [f"{where}.{key} is not a Stripe field" for key in ours if key not in theirs]
    return problems


@pytest.mark.skipif(not FIXTURES.exists(), reason="needs ../shared/stripe/fixtures3.json beside the checkout")
def test_objects_have_the_fields_and_types_of_stripes_own_examples(stripe_double):
    fixtures = json.loads(FIXTURES.read_text())["resources"]
    intent = pay(stripe_double, 5_000)
    account_id = onboarded_account(stripe_double)
    transfer = stripe_double.client.v1.transfers.create(
        params={
            "amount": 1_000,
            "currency": "usd",
            "destination": account_id,
            "source_transaction": intent.latest_charge,
        }
    )
    stripe_double.client.v1.transfers.reversals.create(transfer.id, params={"amount": 100})
    stripe_double.client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    httpx.post(f"{stripe_double.base}/_test/charges/{intent.latest_charge}/dispute")
    double = stripe_double.double
    ours = {
        "customer": next(iter(double.objects["customers"].values()), None)
        or stripe_double.client.v1.customers.create(params={}).to_dict(),
        "payment_intent": double.objects["payment_intents"][intent.id],
        "charge": double.objects["charges"][intent.latest_charge],
        "refund": next(iter(double.objects["refunds"].values())),
        "account": double.objects["accounts"][account_id],
        "account_link": stripe_double.client.v1.account_links.create(
            params={
                "account": account_id,
                "refresh_url": "https://x.test",
                "return_url": "https://x.test",
                "type": "account_onboarding",
            }
        ).to_dict(),
        "transfer": double.objects["transfers"][transfer.id],
        "transfer_reversal": double.objects["transfers"][transfer.id]["reversals"]["data"][0],
        "dispute": next(iter(double.objects["disputes"].values())),
        "event": double.events[0],
    }

    problems = [p for name, obj in ours.items() for p in _same_shape(obj, fixtures[name], name)]

    assert problems == []


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [(49, "usd", "amount_too_small"), (29, "gbp", "amount_too_small"), (100_000_000, "usd", "amount_too_large")],
)
def test_payment_intents_outside_stripes_limits_are_refused(stripe_double, amount, currency, code):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_double.client.v1.payment_intents.create(params={"amount": amount, "currency": currency})

    assert refused.value.code == code
    assert stripe_double.double.objects["payment_intents"] == {}


def test_the_smallest_and_largest_amounts_are_accepted(stripe_double):
    for amount in (50, 99_999_999):
        stripe_double.client.v1.payment_intents.create(params={"amount": amount, "currency": "usd"})

    assert len(stripe_double.double.objects["payment_intents"]) == 2


def test_a_person_finishing_onboarding_in_a_browser_is_sent_to_the_links_return_url(stripe_double):
    import httpx

    account = stripe_double.client.v1.accounts.create(params={"type": "express"})
    link = stripe_double.client.v1.account_links.create(
        params={
            "account": account.id,
            "type": "account_onboarding",
            "refresh_url": "http://vetted.test/app/payouts",
            "return_url": "http://vetted.test/app/payouts",
        }
    )

    answer = httpx.get(link.url, timeout=5)

    assert answer.status_code == 302
    assert answer.headers["location"] == "http://vetted.test/app/payouts"
    assert stripe_double.client.v1.accounts.retrieve(account.id).payouts_enabled is True
