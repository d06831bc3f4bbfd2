"""The double as a browser meets it: the stand-in for Stripe.js, CORS, and confirming with a publishable key."""

import httpx

from tests.payments.conftest import DoubleRun

PAGE_ORIGIN = {"Origin": "http://127.0.0.1:8000"}


def unpaid_intent(run: DoubleRun) -> tuple[str, str]:
    """A PaymentIntent made server-side, as funding a milestone makes one: its id and client secret."""
    intent = run.client.v1.payment_intents.create(params={"amount": 20_000, "currency": "usd"})
    return intent.id, str(intent.client_secret)


def confirm_from_the_browser(run: DoubleRun, intent_id: str, client_secret: str, card: str) -> httpx.Response:
    """The call the stand-in's confirmPayment makes: form-encoded, with the publishable key."""
    return httpx.post(
        f"{run.base}/v1/payment_intents/{intent_id}/confirm",
        data={"payment_method": card, "client_secret": client_secret, "key": "pk_test_double"},
        headers=PAGE_ORIGIN,
        timeout=5,
    )


def test_the_stand_in_for_stripe_js_is_served_as_javascript(stripe_double):
    with_slash = httpx.get(f"{stripe_double.base}/v3/", timeout=5)
    without = httpx.get(f"{stripe_double.base}/v3", timeout=5)

    assert (with_slash.status_code, without.status_code) == (200, 200)
    assert with_slash.headers["content-type"] == "application/javascript; charset=utf-8"
    assert without.content == with_slash.content
    assert "A TEST STAND-IN FOR STRIPE.JS, NOT STRIPE.JS" in with_slash.text
    assert "window.Stripe = function Stripe(publishableKey)" in with_slash.text


def test_api_answers_allow_any_origin(stripe_double):
    answer = httpx.get(
        f"{stripe_double.base}/v1/events", headers={**PAGE_ORIGIN, "Authorization": "Bearer sk_test_double"}, timeout=5
    )

    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"


def test_a_preflight_is_answered_without_reaching_the_api(stripe_double):
    answer = httpx.options(
        f"{stripe_double.base}/v1/payment_intents/pi_123/confirm",
        headers={
            **PAGE_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )

    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-allow-methods"] == "GET, POST, DELETE, OPTIONS"
    assert "Content-Type" in answer.headers["access-control-allow-headers"]
    assert stripe_double.double.requests == []


def test_a_publishable_key_and_the_client_secret_confirm_the_payment(stripe_double):
    intent_id, client_secret = unpaid_intent(stripe_double)

    answer = confirm_from_the_browser(stripe_double, intent_id, client_secret, "pm_card_visa")
    stripe_double.drain()

    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert (answer.json()["id"], answer.json()["status"]) == (intent_id, "succeeded")
    assert stripe_double.client.v1.payment_intents.retrieve(intent_id).status == "succeeded"
    assert [(e["type"], e["data"]["object"]["id"]) for e in stripe_double.collector.events()][-1] == (
        "payment_intent.succeeded",
        intent_id,
    )


def test_a_declined_card_from_the_browser_is_a_card_error(stripe_double):
    intent_id, client_secret = unpaid_intent(stripe_double)

    answer = confirm_from_the_browser(stripe_double, intent_id, client_secret, "pm_card_chargeDeclined")

    assert answer.status_code == 402
    assert answer.headers["access-control-allow-origin"] == "*"
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("card_error", "card_declined")
    assert error["message"] == "Your card was declined."
    assert stripe_double.client.v1.payment_intents.retrieve(intent_id).status == "requires_payment_method"


def test_a_wrong_client_secret_is_refused_and_changes_nothing(stripe_double):
    intent_id, _ = unpaid_intent(stripe_double)
    _, other_secret = unpaid_intent(stripe_double)

    answer = confirm_from_the_browser(stripe_double, intent_id, other_secret, "pm_card_visa")
    stripe_double.drain()

    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "type": "invalid_request_error",
        "message": "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
        "code": "payment_intent_invalid_parameter",
        "param": "client_secret",
    }
    assert stripe_double.client.v1.payment_intents.retrieve(intent_id).status == "requires_payment_method"
    assert stripe_double.double.objects["charges"] == {}
    assert stripe_double.double.events == []
    assert stripe_double.collector.received == []


def test_a_publishable_key_can_do_nothing_else(stripe_double):
    intent_id, _ = unpaid_intent(stripe_double)
    as_page = {**PAGE_ORIGIN, "Authorization": "Bearer pk_test_double"}

    without_secret = httpx.post(
        f"{stripe_double.base}/v1/payment_intents/{intent_id}/confirm",
        data={"payment_method": "pm_card_visa", "key": "pk_test_double"},
        headers=PAGE_ORIGIN,
        timeout=5,
    )
    create = httpx.post(
        f"{stripe_double.base}/v1/payment_intents",
        data={"amount": 5_000, "currency": "usd"},
        headers=as_page,
        timeout=5,
    )
    read = httpx.get(f"{stripe_double.base}/v1/payment_intents/{intent_id}", headers=as_page, timeout=5)

    assert (without_secret.status_code, create.status_code, read.status_code) == (401, 401, 401)
    assert read.json()["error"]["message"].startswith("This API call cannot be made with a publishable API key.")
    assert list(stripe_double.double.objects["payment_intents"]) == [intent_id]
    assert stripe_double.double.objects["payment_intents"][intent_id]["status"] == "requires_payment_method"


def test_confirm_setup_from_the_browser_saves_the_card_and_a_wrong_secret_changes_nothing(stripe_double):
    customer = stripe_double.client.v1.customers.create(params={"email": "ada@example.test"})
    setup = stripe_double.client.v1.setup_intents.create(params={"customer": customer.id, "usage": "off_session"})
    other = stripe_double.client.v1.setup_intents.create(params={"customer": customer.id, "usage": "off_session"})

    def confirm(secret: str) -> httpx.Response:
        return httpx.post(
            f"{stripe_double.base}/v1/setup_intents/{setup.id}/confirm",
            data={"payment_method": "pm_card_visa", "client_secret": secret, "key": "pk_test_double"},
            headers=PAGE_ORIGIN,
            timeout=5,
        )

    wrong = confirm(str(other.client_secret))
    untouched = stripe_double.client.v1.setup_intents.retrieve(setup.id).status
    right = confirm(str(setup.client_secret))
    stripe_double.drain()

    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "setup_intent_invalid_parameter"
    assert untouched == "requires_payment_method"
    assert right.status_code == 200
    assert right.json()["status"] == "succeeded"
    assert "setup_intent.succeeded" in [event["type"] for event in stripe_double.collector.events()]
