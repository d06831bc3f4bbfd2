"""The double as an ASGI application: routes, state, idempotency, webhooks."""

import asyncio
import copy
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stripe_double import objects
from stripe_double.forms import parse

logger = logging.getLogger(__name__)

Json = dict[str, Any]
Scope = dict[str, Any]

SUCCEEDING_CARDS = {"pm_card_visa", "pm_card_mastercard"}
DECLINING_CARDS = {
    "pm_card_chargeDeclined": "Your card was declined.",
    "pm_card_chargeDeclinedInsufficientFunds": "Your card has insufficient funds.",
}


ONBOARDING_PAGE = re.compile(r"^/_test/onboarding/(?P<id>[\w]+)$")


@dataclass(frozen=True)
class TestCard:
    """One of Stripe's test cards (https://docs.stripe.com/testing), as a token and as a number."""

    token: str
    number: str
    brand: str
    # "succeeds"; "authenticate": 3D Secure on every payment, so off-session charges fail with
    # authentication_required; "declined_when_charged": attaches to a customer, every charge is declined.
    behaviour: str


SAVED_CARDS = {
    card.token: card
    for card in (
        TestCard("pm_card_visa", "4242424242424242", "visa", "succeeds"),
        TestCard("pm_card_mastercard", "5555555555554444", "mastercard", "succeeds"),
        TestCard("pm_card_authenticationRequired", "4000002760003184", "visa", "authenticate"),
        TestCard("pm_card_chargeCustomerFail", "4000000000000341", "visa", "declined_when_charged"),
    )
}
CARDS_BY_NUMBER = {card.number: card for card in SAVED_CARDS.values()}


# The stand-in for Stripe.js that pages load in place of https://js.stripe.com/v3/ (docs/payments.md).
STRIPE_JS = (Path(__file__).parent / "stripe.js").read_bytes()

# Pages on another origin call /v1/ from the browser, as Stripe.js calls api.stripe.com.
CORS_HEADERS = [(b"access-control-allow-origin", b"*")]
PREFLIGHT_HEADERS = [
    *CORS_HEADERS,
    (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"Authorization, Content-Type, Idempotency-Key, Stripe-Account, Stripe-Version"),
    (b"access-control-max-age", b"600"),
]

# The calls a publishable key may make here: confirming a PaymentIntent or a SetupIntent whose client secret
# it holds (Stripe.js's confirmPayment and confirmSetup).
CONFIRM_WITH_CLIENT_SECRET = re.compile(r"^/v1/(payment_intents|setup_intents)/(?P<id>[\w]+)/confirm$")


def _publishable(params: Json, headers: dict[bytes, bytes]) -> bool:
    """Stripe.js sends its key as `key=pk_...` in the body; a server library as `Authorization: Bearer`."""
    bearer = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
    return str(params.get("key", "")).startswith("pk_") or bearer.startswith("pk_")


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        payment_intent: Json | None = None,
        decline_code: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body: Json = {"error": {"type": type_, "message": message, "code": code, "param": param}}
        if payment_intent is not None:
            # A card error names the PaymentIntent it left behind (https://docs.stripe.com/api/errors).
            self.body["error"]["payment_intent"] = copy.deepcopy(payment_intent)
        if decline_code is not None:
            self.body["error"]["decline_code"] = decline_code


# Stripe's minimum charge amounts for the currencies the tests use (https://docs.stripe.com/currencies);
# written out here, apart from the service's own table, so a test can catch the service getting it wrong.
MINIMUM_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "jpy": 50, "chf": 50, "cad": 50, "aud": 50}


# What GET /v1/events takes (https://docs.stripe.com/api/events/list).
EVENT_LIST_PARAMS = {"created", "delivery_success", "ending_before", "limit", "starting_after", "type", "types"}


def _list_limit(params: Json) -> int:
    """A list's `limit`: 10 unless given, and refused outside 1-100, as Stripe refuses it (its list endpoints)."""
    try:
        limit = int(params.get("limit", 10))
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= 100:
        raise StripeError(400, "invalid_request_error", "Limit must be between 1 and 100.", param="limit")
    return limit


def _missing(resource: str, object_id: str) -> StripeError:
    return StripeError(404, "invalid_request_error", f"No such {resource}: '{object_id}'", code="resource_missing")


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: HMAC-SHA256 of "<t>.<payload>" with the endpoint secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> bytes:
    """The whole request body of an ASGI HTTP request."""
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


@dataclass
class Delivery:
    """How webhooks go out. Tests hold them back and release them duplicated or in reverse."""

    url: str | None
    secret: str | None
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    hold: bool = False
    held: list[Json] = field(default_factory=list)


class StripeDouble:
    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        public_url: str = "http://127.0.0.1:12111",
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0),
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.delivery = Delivery(webhook_url, webhook_secret, retry_delays)
        self.objects: dict[str, dict[str, Json]] = {
            kind: {}
            for kind in (
                "customers",
                "payment_intents",
                "charges",
                "refunds",
                "accounts",
                "transfers",
                "disputes",
                "setup_intents",
                "payment_methods",
            )
        }
        # What each saved PaymentMethod does when used (not a Stripe field: the card network's side).
        self.card_behaviour: dict[str, str] = {}
        self.events: list[Json] = []
        self.delivered: dict[str, bool] = {}
        self.idempotency: dict[str, tuple[str, int, Json]] = {}
        self.platform_balance: dict[str, int] = {}
        self.account_balance: dict[tuple[str, str], int] = {}
        self.mode, self.delay = "normal", 0.0
        self.requests: list[tuple[str, str]] = []
        # Where each account's onboarding link sends the browser back (the Account Link's return_url).
        self.onboarding_return: dict[str, str] = {}
        self._queue: asyncio.Queue[Json] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Json]]] = [
            ("POST", re.compile(r"^/v1/customers$"), self.create_customer),
            ("GET", re.compile(r"^/v1/customers/(?P<id>[\w]+)$"), self.get("customers", "customer")),
            ("POST", re.compile(r"^/v1/payment_intents$"), self.create_payment_intent),
            ("GET", re.compile(r"^/v1/payment_intents$"), self.list_payment_intents),
            ("GET", re.compile(r"^/v1/payment_intents/(?P<id>[\w]+)$"), self.get("payment_intents", "payment_intent")),
            ("POST", re.compile(r"^/v1/payment_intents/(?P<id>[\w]+)/confirm$"), self.confirm_payment_intent),
            ("POST", re.compile(r"^/v1/payment_intents/(?P<id>[\w]+)/cancel$"), self.cancel_payment_intent),
            ("GET", re.compile(r"^/v1/charges/(?P<id>[\w]+)$"), self.get("charges", "charge")),
            ("POST", re.compile(r"^/v1/setup_intents$"), self.create_setup_intent),
            ("GET", re.compile(r"^/v1/setup_intents/(?P<id>[\w]+)$"), self.get("setup_intents", "setup_intent")),
            ("POST", re.compile(r"^/v1/setup_intents/(?P<id>[\w]+)/confirm$"), self.confirm_setup_intent),
            ("GET", re.compile(r"^/v1/payment_methods/(?P<id>[\w]+)$"), self.get("payment_methods", "payment_method")),
            ("POST", re.compile(r"^/v1/refunds$"), self.create_refund),
            ("GET", re.compile(r"^/v1/refunds/(?P<id>[\w]+)$"), self.get("refunds", "refund")),
            ("POST", re.compile(r"^/v1/accounts$"), self.create_account),
            ("GET", re.compile(r"^/v1/accounts/(?P<id>[\w]+)$"), self.get("accounts", "account")),
            ("POST", re.compile(r"^/v1/account_links$"), self.create_account_link),
            ("POST", re.compile(r"^/v1/transfers$"), self.create_transfer),
            ("GET", re.compile(r"^/v1/transfers$"), self.list_transfers),
            ("GET", re.compile(r"^/v1/transfers/(?P<id>[\w]+)$"), self.get("transfers", "transfer")),
            ("POST", re.compile(r"^/v1/transfers/(?P<id>[\w]+)/reversals$"), self.create_reversal),
            ("GET", re.compile(r"^/v1/disputes/(?P<id>[\w]+)$"), self.get("disputes", "dispute")),
            ("GET", re.compile(r"^/v1/events$"), self.list_events),
            ("GET", re.compile(r"^/v1/events/(?P<id>[\w]+)$"), self.get_event),
            # Test hooks: what a person or the card network would do on Stripe's side.
            ("POST", re.compile(r"^/_test/accounts/(?P<id>[\w]+)/complete_onboarding$"), self.complete_onboarding),
            ("GET", re.compile(r"^/_test/onboarding/(?P<id>[\w]+)$"), self.complete_onboarding),
            ("POST", re.compile(r"^/_test/charges/(?P<id>[\w]+)/dispute$"), self.open_dispute),
            ("POST", re.compile(r"^/_test/disputes/(?P<id>[\w]+)/close$"), self.close_dispute),
            ("POST", re.compile(r"^/_test/setup_intents/(?P<id>[\w]+)/authenticate$"), self.authenticate_setup),
            ("POST", re.compile(r"^/_test/payment_intents/(?P<id>[\w]+)/authenticate$"), self.authenticate_payment),
            ("POST", re.compile(r"^/_test/mode$"), self.set_mode),
            ("GET", re.compile(r"^/_test/requests$"), self.count_requests),
            ("POST", re.compile(r"^/_test/webhooks/hold$"), self.hold_webhooks),
            ("POST", re.compile(r"^/_test/webhooks/release$"), self.release_webhooks),
        ]

    def reset(self, *, keep_accounts: bool = False) -> None:
        """Forget objects and events (tests that run many stories against one server)."""
        for name, kind in self.objects.items():
            if not (keep_accounts and name == "accounts"):
                kind.clear()
        self.events.clear()
        self.delivered.clear()
        self.idempotency.clear()
        self.platform_balance.clear()
        self.account_balance.clear()
        self.card_behaviour.clear()
        self.requests.clear()
        self.onboarding_return.clear()
        self.delivery.held.clear()
        self.delivery.hold = False
        self.mode, self.delay = "normal", 0.0

    # --- ASGI -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = await read_body(receive)
        method, path = scope["method"], scope["path"]
        if method == "GET" and path in ("/v3", "/v3/"):
            await _respond(send, 200, [(b"content-type", b"application/javascript; charset=utf-8")], STRIPE_JS)
            return
        if method == "OPTIONS" and path.startswith("/v1/"):
            await _respond(send, 204, PREFLIGHT_HEADERS, b"")
            return
        status, payload, headers = await self.handle(
            method, path, scope.get("query_string", b"").decode(), body, dict(scope["headers"])
        )
        if path.startswith("/v1/"):
            headers = [*headers, *CORS_HEADERS]
        onboarded = ONBOARDING_PAGE.match(path) if method == "GET" and status == 200 else None
        if onboarded and onboarded["id"] in self.onboarding_return:
            # A person finished Stripe's hosted onboarding in a browser: Stripe sends them to return_url.
            location = self.onboarding_return[onboarded["id"]].encode()
            await _respond(send, 302, [(b"location", location), (b"content-type", b"text/plain")], b"")
            return
        await _respond(send, status, [(b"content-type", b"application/json"), *headers], json.dumps(payload).encode())

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._sender is not None:
                    self._sender.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle(
        self, method: str, path: str, query: str, body: bytes, headers: dict[bytes, bytes]
    ) -> tuple[int, Json, list[tuple[bytes, bytes]]]:
        self.requests.append((method, path))
        if path.startswith("/v1/"):
            if self.mode == "down":
                return 503, {"error": {"type": "api_error", "message": "The double is down (test mode)."}}, []
            if self.mode == "slow":
                await asyncio.sleep(self.delay)
        params = parse(body if method == "POST" else query)
        if self.mode == "late" and path.startswith("/v1/"):
            # Stripe did the work; its answer arrives late (or, for a client that gave up, never).
            answer = await self._answer(method, path, params, headers)
            await asyncio.sleep(self.delay)
            return answer
        return await self._answer(method, path, params, headers)

    async def _answer(
        self, method: str, path: str, params: Json, headers: dict[bytes, bytes]
    ) -> tuple[int, Json, list[tuple[bytes, bytes]]]:
        if _publishable(params, headers) and not (
            method == "POST" and CONFIRM_WITH_CLIENT_SECRET.match(path) and params.get("client_secret")
        ):
            error = StripeError(
                401,
                "invalid_request_error",
                "This API call cannot be made with a publishable API key. Please use a secret API key.",
            )
            return error.status, error.body, []
        key = headers.get(b"idempotency-key", b"").decode() or None
        if key is not None and method == "POST":
            fingerprint = json.dumps([method, path, params], sort_keys=True)
            if key in self.idempotency:
                seen, status, payload = self.idempotency[key]
                if seen != fingerprint:
                    message = (
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        "used with. Try using a key other than '" + key + "' if you meant to execute a different "
                        "request."
                    )
                    error = StripeError(400, "idempotency_error", message)
                    return error.status, error.body, []
                return status, copy.deepcopy(payload), [(b"idempotent-replayed", b"true")]
        status, payload = self._dispatch(method, path, params, key)
        if key is not None and method == "POST" and status < 500:
            self.idempotency[key] = (json.dumps([method, path, params], sort_keys=True), status, copy.deepcopy(payload))
        self._start_sender()
        return status, payload, []

    def _dispatch(self, method: str, path: str, params: Json, key: str | None) -> tuple[int, Json]:
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match and route_method == method:
                try:
                    return 200, handler(params=params, key=key, **match.groupdict())
                except StripeError as exc:
                    return exc.status, exc.body
        return 404, {
            "error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({method}: {path})."}
        }

    # --- helpers ----------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Callable[..., Json]:
        def read(*, id: str, **_: Any) -> Json:
            if id not in self.objects[kind]:
                raise _missing(name, id)
            return self.objects[kind][id]

        return read

    def _find(self, kind: str, name: str, object_id: str) -> Json:
        found = self.objects[kind].get(object_id)
        if found is None:
            raise _missing(name, object_id)
        return found

    @staticmethod
    def _amount(params: Json, name: str = "amount") -> int:
        try:
            amount = int(params[name])
        except (KeyError, ValueError):
            raise StripeError(400, "invalid_request_error", f"Missing required param: {name}.", param=name) from None
        if amount <= 0:
            raise StripeError(400, "invalid_request_error", "This value must be greater than 0.", param=name)
        return amount

    def _emit(self, type_: str, obj: Json, key: str | None) -> None:
        event = objects.event(type_=type_, obj=copy.deepcopy(obj), idempotency_key=key)
        self.events.append(event)
        self.delivered[event["id"]] = False
        if self.delivery.url is None:
            event["pending_webhooks"] = 0
            return
        if self.delivery.hold:
            self.delivery.held.append(event)
        else:
            self._enqueue(event)

    # --- resources --------------------------------------------------------------------

    def create_customer(self, *, params: Json, key: str | None) -> Json:
        created = objects.customer(
            email=params.get("email"), name=params.get("name"), metadata=params.get("metadata", {})
        )
        self.objects["customers"][created["id"]] = created
        return created

    def create_payment_intent(self, *, params: Json, key: str | None) -> Json:
        currency = params.get("currency", "").lower()
        if len(currency) != 3:
            raise StripeError(400, "invalid_request_error", "Missing required param: currency.", param="currency")
        amount = self._amount(params)
        minimum = MINIMUM_CHARGE.get(currency, 50)
        if amount < minimum:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Amount must be at least {minimum} {currency} minor units.",
                code="amount_too_small",
                param="amount",
            )
        if amount > 99_999_999:
            raise StripeError(
                400,
                "invalid_request_error",
                "Amount must be no more than 99999999.",
                code="amount_too_large",
                param="amount",
            )
        intent = objects.payment_intent(
            amount=amount,
            currency=currency,
            customer=params.get("customer"),
            transfer_group=params.get("transfer_group"),
            metadata=params.get("metadata", {}),
            description=params.get("description"),
        )
        self.objects["payment_intents"][intent["id"]] = intent
        if params.get("payment_method"):
            intent["payment_method"] = params["payment_method"]
            intent["status"] = "requires_confirmation"
        if params.get("confirm") == "true":
            return self._confirm(
                intent, params.get("payment_method"), key, off_session=params.get("off_session") == "true"
            )
        return intent

    def list_payment_intents(self, *, params: Json, key: str | None) -> Json:
        """Newest first; `limit` 1 to 100 (no paging: the double never holds that many in a test)."""
        found = list(reversed(self.objects["payment_intents"].values()))
        limit = _list_limit(params)
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": "/v1/payment_intents"}

    def confirm_payment_intent(self, *, id: str, params: Json, key: str | None) -> Json:
        """With a secret key as stripe-python does, or from the browser as Stripe.js does: a publishable key and
        the PaymentIntent's `client_secret` (https://docs.stripe.com/api/payment_intents/confirm)."""
        intent = self._find("payment_intents", "payment_intent", id)
        if "client_secret" in params and params["client_secret"] != intent["client_secret"]:
            raise StripeError(
                400,
                "invalid_request_error",
                "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
                code="payment_intent_invalid_parameter",
                param="client_secret",
            )
        return self._confirm(
            intent,
            params.get("payment_method") or intent["payment_method"],
            key,
            off_session=params.get("off_session") == "true",
        )

    def _confirm(self, intent: Json, payment_method: str | None, key: str | None, *, off_session: bool = False) -> Json:
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise StripeError(
                400,
                "invalid_request_error",
                f"This PaymentIntent's status is {intent['status']}; it cannot be confirmed.",
                code="payment_intent_unexpected_state",
            )
        if payment_method in self.objects["payment_methods"]:
            return self._confirm_saved(intent, payment_method, key, off_session=off_session)
        if payment_method not in SUCCEEDING_CARDS and payment_method not in DECLINING_CARDS:
            raise StripeError(
                400,
                "invalid_request_error",
                f"No such PaymentMethod: '{payment_method}'",
                code="resource_missing",
                param="payment_method",
            )
        intent["payment_method"] = payment_method
        failure = DECLINING_CARDS.get(payment_method or "")
        if failure:
            self._decline(intent, payment_method or "", failure, key)
        return self._succeed(intent, payment_method or "", key)

    def _confirm_saved(self, intent: Json, payment_method: str, key: str | None, *, off_session: bool) -> Json:
        """Confirm with a PaymentMethod saved on a Customer, as an off-session charge or with the customer present."""
        saved = self.objects["payment_methods"][payment_method]
        if saved["customer"] is not None and saved["customer"] != intent["customer"]:
            raise StripeError(
                400,
                "invalid_request_error",
                "The provided PaymentMethod is attached to another Customer than this PaymentIntent's.",
                param="payment_method",
            )
        intent["payment_method"] = payment_method
        behaviour = self.card_behaviour[payment_method]
        if behaviour == "authenticate":
            if off_session:
                message = "Your card was declined. This transaction requires authentication."
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {
                    "type": "card_error",
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "message": message,
                    "payment_method": saved,
                }
                self._emit("payment_intent.payment_failed", intent, key)
                raise StripeError(
                    402,
                    "card_error",
                    message,
                    code="authentication_required",
                    payment_intent=intent,
                    decline_code="authentication_required",
                )
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
            self._emit("payment_intent.requires_action", intent, key)
            return intent
        if behaviour == "declined_when_charged":
            self._decline(intent, payment_method, "Your card was declined.", key)
        return self._succeed(intent, payment_method, key)

    def _decline(self, intent: Json, payment_method: str, failure: str, key: str | None) -> None:
        made = objects.charge(intent=intent, payment_method=payment_method, paid=False, failure=failure)
        self.objects["charges"][made["id"]] = made
        intent["latest_charge"] = made["id"]
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {"type": "card_error", "code": "card_declined", "message": failure}
        self._emit("payment_intent.payment_failed", intent, key)
        raise StripeError(
            402, "card_error", failure, code="card_declined", payment_intent=intent, decline_code="generic_decline"
        )

    def _succeed(self, intent: Json, payment_method: str, key: str | None) -> Json:
        made = objects.charge(intent=intent, payment_method=payment_method, paid=True, failure=None)
        self.objects["charges"][made["id"]] = made
        intent["latest_charge"] = made["id"]
        intent["status"], intent["amount_received"], intent["last_payment_error"] = "succeeded", intent["amount"], None
        intent["next_action"] = None
        currency = intent["currency"]
        self.platform_balance[currency] = self.platform_balance.get(currency, 0) + intent["amount"]
        self._emit("charge.succeeded", made, key)
        self._emit("payment_intent.succeeded", intent, key)
        return intent

    def authenticate_payment(self, *, id: str, params: Json, key: str | None) -> Json:
        """The customer completing 3D Secure in Stripe.js: a PaymentIntent that requires_action succeeds."""
        intent = self._find("payment_intents", "payment_intent", id)
        if intent["status"] != "requires_action":
            raise StripeError(400, "invalid_request_error", f"This PaymentIntent's status is {intent['status']}.")
        return self._succeed(intent, intent["payment_method"], key)

    # --- saving a card for later: SetupIntents and PaymentMethods -------------------------

    def _payment_method_from(self, params: Json) -> str:
        """A token (`pm_card_visa`), a test card number, or an existing PaymentMethod id; returns the id."""
        given = params.get("payment_method")
        if given in self.objects["payment_methods"]:
            return str(given)
        number = (params.get("payment_method_data") or {}).get("card", {}).get("number")
        card = SAVED_CARDS.get(given or "") or CARDS_BY_NUMBER.get(number or "")
        if card is None:
            raise StripeError(
                400,
                "invalid_request_error",
                f"No such PaymentMethod: '{given or number}'",
                code="resource_missing",
                param="payment_method",
            )
        made = objects.payment_method(card={"brand": card.brand, "last4": card.number[-4:]}, customer=None)
        self.objects["payment_methods"][made["id"]] = made
        self.card_behaviour[made["id"]] = card.behaviour
        return str(made["id"])

    def create_setup_intent(self, *, params: Json, key: str | None) -> Json:
        customer = params.get("customer")
        if customer is not None:
            self._find("customers", "customer", customer)
        usage = params.get("usage", "off_session")
        if usage not in ("off_session", "on_session"):
            raise StripeError(400, "invalid_request_error", f"Invalid usage: {usage}", param="usage")
        intent = objects.setup_intent(customer=customer, usage=usage, metadata=params.get("metadata", {}))
        self.objects["setup_intents"][intent["id"]] = intent
        if params.get("confirm") == "true":
            return self._confirm_setup(intent, params, key)
        return intent

    def confirm_setup_intent(self, *, id: str, params: Json, key: str | None) -> Json:
        """With a secret key, or from the browser with a publishable key and the SetupIntent's `client_secret`
        (https://docs.stripe.com/api/setup_intents/confirm)."""
        intent = self._find("setup_intents", "setup_intent", id)
        if "client_secret" in params and params["client_secret"] != intent["client_secret"]:
            raise StripeError(
                400,
                "invalid_request_error",
                "The client_secret provided does not match the client_secret associated with the SetupIntent.",
                code="setup_intent_invalid_parameter",
                param="client_secret",
            )
        return self._confirm_setup(intent, params, key)

    def _confirm_setup(self, intent: Json, params: Json, key: str | None) -> Json:
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise StripeError(
                400,
                "invalid_request_error",
                f"This SetupIntent's status is {intent['status']}; it cannot be confirmed.",
                code="setup_intent_unexpected_state",
            )
        payment_method = self._payment_method_from(params)  # attached to the customer when the setup succeeds
        intent["payment_method"] = payment_method
        if self.card_behaviour[payment_method] == "authenticate":
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
            self._emit("setup_intent.requires_action", intent, key)
            return intent
        return self._setup_succeeded(intent, key)

    def _setup_succeeded(self, intent: Json, key: str | None) -> Json:
        intent["status"], intent["next_action"] = "succeeded", None
        method = self.objects["payment_methods"][intent["payment_method"]]
        if intent["customer"] is not None and method["customer"] is None:
            method["customer"] = intent["customer"]
            self._emit("payment_method.attached", method, key)
        self._emit("setup_intent.succeeded", intent, key)
        return intent

    def authenticate_setup(self, *, id: str, params: Json, key: str | None) -> Json:
        """The customer completing 3D Secure while saving the card: the SetupIntent succeeds."""
        intent = self._find("setup_intents", "setup_intent", id)
        if intent["status"] != "requires_action":
            raise StripeError(400, "invalid_request_error", f"This SetupIntent's status is {intent['status']}.")
        return self._setup_succeeded(intent, key)

    def cancel_payment_intent(self, *, id: str, params: Json, key: str | None) -> Json:
        intent = self._find("payment_intents", "payment_intent", id)
        if intent["status"] in ("succeeded", "canceled"):
            raise StripeError(
                400,
                "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        intent["status"], intent["canceled_at"] = "canceled", objects.now()
        intent["cancellation_reason"] = params.get("cancellation_reason", "requested_by_customer")
        self._emit("payment_intent.canceled", intent, key)
        return intent

    def _charge_for(self, params: Json) -> Json:
        if params.get("charge"):
            return self._find("charges", "charge", params["charge"])
        if params.get("payment_intent"):
            intent = self._find("payment_intents", "payment_intent", params["payment_intent"])
            if not intent["latest_charge"]:
                raise StripeError(400, "invalid_request_error", "This PaymentIntent has no charge to refund.")
            return self._find("charges", "charge", intent["latest_charge"])
        raise StripeError(400, "invalid_request_error", "One of charge or payment_intent is required.")

    def create_refund(self, *, params: Json, key: str | None) -> Json:
        paid = self._charge_for(params)
        if paid.get("disputed"):
            raise StripeError(
                400,
                "invalid_request_error",
                f"Charge {paid['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        left = paid["amount_captured"] - paid["amount_refunded"]
        amount = self._amount(params) if "amount" in params else left
        if amount > left:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                code="amount_too_large",
                param="amount",
            )
        currency = paid["currency"]
        if self.platform_balance.get(currency, 0) < amount:
            raise StripeError(
                400,
                "invalid_request_error",
                "Insufficient funds in the platform balance for this refund.",
                code="balance_insufficient",
            )
        made = objects.refund(
            charge=paid, amount=amount, reason=params.get("reason"), metadata=params.get("metadata", {})
        )
        self.objects["refunds"][made["id"]] = made
        paid["amount_refunded"] += amount
        paid["refunded"] = paid["amount_refunded"] == paid["amount_captured"]
        paid["refunds"]["data"].insert(0, made)
        self.platform_balance[currency] -= amount
        self._emit("charge.refunded", paid, key)
        return made

    def create_account(self, *, params: Json, key: str | None) -> Json:
        if params.get("type", "express") != "express":
            raise StripeError(400, "invalid_request_error", "Only express accounts are supported here.", param="type")
        made = objects.account(
            email=params.get("email"), country=params.get("country", "US"), metadata=params.get("metadata", {})
        )
        self.objects["accounts"][made["id"]] = made
        return made

    def create_account_link(self, *, params: Json, key: str | None) -> Json:
        self._find("accounts", "account", params.get("account", ""))
        if params.get("return_url"):
            self.onboarding_return[params["account"]] = params["return_url"]
        return objects.account_link(url=f"{self.public_url}/_test/onboarding/{params['account']}")

    def complete_onboarding(self, *, id: str, params: Json, key: str | None) -> Json:
        made = self._find("accounts", "account", id)
        made.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
        made["capabilities"] = {"transfers": "active"}
        made["requirements"] = {"currently_due": [], "disabled_reason": None}
        self._emit("account.updated", made, key)
        return made

    def create_transfer(self, *, params: Json, key: str | None) -> Json:
        amount, currency = self._amount(params), params.get("currency", "").lower()
        destination = self._find("accounts", "account", params.get("destination", ""))
        if not destination["payouts_enabled"]:
            raise StripeError(
                400,
                "invalid_request_error",
                "The destination account cannot receive transfers yet.",
                code="account_invalid",
            )
        source = params.get("source_transaction")
        if source:
            paid = self._find("charges", "charge", source)
            sent = sum(
                t["amount"] - t["amount_reversed"]
                for t in self.objects["transfers"].values()
                if t["source_transaction"] == source
            )
            if amount > paid["amount_captured"] - paid["amount_refunded"] - sent:
                raise StripeError(
                    400,
                    "invalid_request_error",
                    "The transfer amount exceeds what is left of the source transaction.",
                    code="balance_insufficient",
                )
        if self.platform_balance.get(currency, 0) < amount:
            raise StripeError(
                400, "invalid_request_error", "Insufficient funds in the platform balance.", code="balance_insufficient"
            )
        made = objects.transfer(
            amount=amount,
            currency=currency,
            destination=destination["id"],
            source_transaction=source,
            transfer_group=params.get("transfer_group"),
            metadata=params.get("metadata", {}),
            description=params.get("description"),
        )
        self.objects["transfers"][made["id"]] = made
        self.platform_balance[currency] -= amount
        balance_key = (destination["id"], currency)
        self.account_balance[balance_key] = self.account_balance.get(balance_key, 0) + amount
        self._emit("transfer.created", made, key)
        return made

    def list_transfers(self, *, params: Json, key: str | None) -> Json:
        """Newest first, optionally only one `transfer_group`; `limit` up to 100, as for PaymentIntents."""
        group = params.get("transfer_group")
        transfers = reversed(self.objects["transfers"].values())
        found = [t for t in transfers if group is None or t["transfer_group"] == group]
        limit = _list_limit(params)
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": "/v1/transfers"}

    def create_reversal(self, *, id: str, params: Json, key: str | None) -> Json:
        sent = self._find("transfers", "transfer", id)
        left = sent["amount"] - sent["amount_reversed"]
        amount = self._amount(params) if "amount" in params else left
        balance_key = (sent["destination"], sent["currency"])
        if amount > left or self.account_balance.get(balance_key, 0) < amount:
            raise StripeError(
                400,
                "invalid_request_error",
                "The connected account's balance is too short to reverse this amount.",
                code="balance_insufficient",
            )
        made = objects.transfer_reversal(transfer=sent, amount=amount, metadata=params.get("metadata", {}))
        sent["amount_reversed"] += amount
        sent["reversed"] = sent["amount_reversed"] == sent["amount"]
        sent["reversals"]["data"].insert(0, made)
        self.account_balance[balance_key] -= amount
        self.platform_balance[sent["currency"]] = self.platform_balance.get(sent["currency"], 0) + amount
        self._emit("transfer.reversed", sent, key)
        return made

    def open_dispute(self, *, id: str, params: Json, key: str | None) -> Json:
        """A cardholder disputes a charge: Stripe debits the disputed amount from the platform's balance at once."""
        paid = self._find("charges", "charge", id)
        made = objects.dispute(charge=paid, reason=params.get("reason", "fraudulent"))
        self.objects["disputes"][made["id"]] = made
        paid["disputed"] = True
        currency = paid["currency"]
        self.platform_balance[currency] = self.platform_balance.get(currency, 0) - made["amount"]
        self._emit("charge.dispute.created", made, key)
        return made

    def close_dispute(self, *, id: str, params: Json, key: str | None) -> Json:
        """The card network decides: `status=won` gives the amount back to the platform, `lost` keeps it away."""
        found = self._find("disputes", "dispute", id)
        if found["status"] in ("won", "lost"):
            raise StripeError(400, "invalid_request_error", f"This dispute is already {found['status']}.")
        found["status"] = "won" if params.get("status") == "won" else "lost"
        if found["status"] == "won":
            currency = found["currency"]
            self.platform_balance[currency] = self.platform_balance.get(currency, 0) + found["amount"]
        self._emit("charge.dispute.closed", found, key)
        return found

    def list_events(self, *, params: Json, key: str | None) -> Json:
        # As at Stripe (https://docs.stripe.com/api/events/list): a parameter it does not know, or a limit
        # outside 1-100, is refused rather than ignored.
        unknown = sorted(set(params) - EVENT_LIST_PARAMS)
        if unknown:
            raise StripeError(
                400, "invalid_request_error", f"Received unknown parameter: {unknown[0]}", param=unknown[0]
            )
        found = list(reversed(self.events))
        if "type" in params:
            found = [e for e in found if e["type"] == params["type"]]
        if params.get("delivery_success") == "false":
            found = [e for e in found if not self.delivered.get(e["id"], False)]
        if params.get("starting_after"):
            ids = [e["id"] for e in found]
            found = found[ids.index(params["starting_after"]) + 1 :] if params["starting_after"] in ids else []
        limit = _list_limit(params)
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": "/v1/events"}

    def get_event(self, *, id: str, params: Json, key: str | None) -> Json:
        for event in self.events:
            if event["id"] == id:
                return event
        raise _missing("event", id)

    # --- test controls ------------------------------------------------------------------

    def count_requests(self, *, params: Json, key: str | None) -> Json:
        """How many API calls (/v1/...) reached the double: proof that a breaker kept one away."""
        return {"count": sum(1 for _, path in self.requests if path.startswith("/v1/"))}

    def set_mode(self, *, params: Json, key: str | None) -> Json:
        self.mode = params.get("mode", "normal")
        self.delay = float(params.get("delay_seconds", 0))
        return {"mode": self.mode, "delay_seconds": self.delay}

    def hold_webhooks(self, *, params: Json, key: str | None) -> Json:
        self.delivery.hold = params.get("hold", "true") == "true"
        return {"hold": self.delivery.hold, "held": len(self.delivery.held)}

    def release_webhooks(self, *, params: Json, key: str | None) -> Json:
        """Send what was held: `order=reverse` for out of order, `duplicates=N` for each N times."""
        held, self.delivery.held, self.delivery.hold = self.delivery.held, [], False
        if params.get("order") == "reverse":
            held.reverse()
        copies = int(params.get("duplicates", 1))
        for event in held:
            for _ in range(copies):
                self._enqueue(event)
        return {"released": len(held) * copies}

    # --- webhook delivery ---------------------------------------------------------------

    def _enqueue(self, event: Json) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
        self._queue.put_nowait(event)

    def _start_sender(self) -> None:
        if self._sender is None and self._queue is not None:
            self._sender = asyncio.get_running_loop().create_task(self._send_forever())

    async def _send_forever(self) -> None:
        assert self._queue is not None  # noqa: S101 - set before the sender starts
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                event = await self._queue.get()
                try:
                    await self._deliver(client, event)
                finally:
                    self._queue.task_done()

    async def _deliver(self, client: httpx.AsyncClient, event: Json) -> None:
        payload = json.dumps(event)
        for attempt, delay in enumerate((0.0, *self.delivery.retry_delays)):
            if delay:
                await asyncio.sleep(delay)
            headers = {
                "Stripe-Signature": sign(payload, self.delivery.secret or ""),
                "Content-Type": "application/json",
            }
            try:
                response = await client.post(self.delivery.url or "", content=payload, headers=headers)
            except httpx.HTTPError as exc:
                logger.info(
                    "stripe_double.webhook_failed", extra={"event": event["id"], "attempt": attempt, "error": repr(exc)}
                )
                continue
            if 200 <= response.status_code < 300:
                self.delivered[event["id"]] = True
                event["pending_webhooks"] = 0
                return
            logger.info("stripe_double.webhook_refused", extra={"event": event["id"], "status": response.status_code})

    async def drain(self, within: float = 10) -> None:
        """Wait until every queued webhook has been sent (tests use this instead of sleeping)."""
        if self._queue is not None:
            await asyncio.wait_for(self._queue.join(), within)
