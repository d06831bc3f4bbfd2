"""Every call to Stripe goes through here, as a coroutine that holds no database connection.

Each call passes, outermost first, a per-process bulkhead (`STRIPE_MAX_CONCURRENCY`
calls in flight), the circuit breaker (which also counts calls slower than
`STRIPE_SLOW_CALL_SECONDS`), a deadline over all attempts (`STRIPE_DEADLINE_SECONDS`),
and bounded retries of transient errors with the same idempotency key. See
`marketplace.resilience` for why each exists.

What a caller learns, and what it means for its recorded step:
- `PaymentsUnavailable(sent=False)`: nothing reached Stripe (breaker open, bulkhead
  full). The step may be given back.
- `PaymentsUnavailable(sent=True)`: Stripe may or may not have acted (timeouts,
  5xx after retries, the deadline). The step stays claimed; replaying the same
  idempotency key later returns what Stripe did (Stripe keeps keys 24 hours:
  https://docs.stripe.com/api/idempotent_requests).
- `PaymentRefused`: Stripe answered and refused (a 4xx). Nothing happened there.

One `StripeClient` (and its httpx `AsyncClient`) per event loop: the ASGI server
has one loop per process and closes its client at shutdown (`aclose`); a worker's
`async_to_sync` runs get theirs, dropped with their loop.
"""

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import stripe
from django.conf import settings

from marketplace import metrics
from marketplace.resilience import Bulkhead, BulkheadFull, CircuitBreaker, CircuitOpen, retrying
from payments.errors import PaymentRefused, PaymentsBusy, PaymentsUnavailable

logger = logging.getLogger(__name__)

_TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


def _counts_against_stripe(exc: BaseException) -> bool:
    return isinstance(exc, (*_TRANSIENT, TimeoutError))


breaker = CircuitBreaker(
    "stripe",
    failure_threshold=settings.STRIPE_BREAKER_FAILURES,
    reset_after=settings.STRIPE_BREAKER_RESET_SECONDS,
    slow_call_seconds=settings.STRIPE_SLOW_CALL_SECONDS,
)
bulkhead = Bulkhead("stripe", limit=settings.STRIPE_MAX_CONCURRENCY, wait_seconds=settings.STRIPE_BULKHEAD_WAIT_SECONDS)
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[stripe.StripeClient, stripe.HTTPXClient]] = (
    weakref.WeakKeyDictionary()
)


def _client() -> stripe.StripeClient:
    loop = asyncio.get_running_loop()
    made = _clients.get(loop)
    if made is None:
        http = stripe.HTTPXClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
        client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            http_client=http,
            max_network_retries=0,  # ours: jittered, bounded, inside the deadline, behind the breaker
        )
        made = _clients[loop] = (client, http)
    return made[0]


async def aclose() -> None:
    """Close this event loop's Stripe client (its connection pool). Called at ASGI shutdown."""
    made = _clients.pop(asyncio.get_running_loop(), None)
    if made is not None:
        await made[1].close_async()  # type: ignore[no-untyped-call]  # stripe-python leaves it untyped


def reset() -> None:
    """Forget clients and close the breaker: for tests that point Stripe somewhere new."""
    _clients.clear()
    breaker.failures, breaker.opened_at = 0, None
    bulkhead.limit = settings.STRIPE_MAX_CONCURRENCY
    bulkhead.wait_seconds = settings.STRIPE_BULKHEAD_WAIT_SECONDS
    breaker.failure_threshold = settings.STRIPE_BREAKER_FAILURES
    breaker.reset_after = settings.STRIPE_BREAKER_RESET_SECONDS
    breaker.slow_call_seconds = settings.STRIPE_SLOW_CALL_SECONDS
    bulkhead._semaphores.clear()


async def _call[T](operation: Callable[[stripe.StripeClient], Awaitable[T]], *, what: str) -> T:
    client = _client()

    async def attempts() -> T:
        async with asyncio.timeout(settings.STRIPE_DEADLINE_SECONDS):
            return await retrying(
                lambda: operation(client), attempts=settings.STRIPE_RETRY_ATTEMPTS, is_retryable=_is_transient
            )

    started = time.monotonic()
    outcome = "ok"
    try:
        return await bulkhead.run(lambda: breaker.acall(attempts, counts_as_failure=_counts_against_stripe))
    except CircuitOpen as exc:
        outcome = "breaker_open"
        raise PaymentsUnavailable(retry_after=int(exc.retry_after) + 1, sent=False) from None
    except BulkheadFull as exc:
        outcome = "busy"
        raise PaymentsBusy(retry_after=int(exc.retry_after) + 1) from None
    except TimeoutError:
        outcome = "deadline"
        logger.warning("stripe.deadline", extra={"what": what, "seconds": round(time.monotonic() - started, 3)})
        raise PaymentsUnavailable(sent=True) from None
    except _TRANSIENT as exc:
        outcome = "unavailable"
        logger.warning("stripe.unavailable", extra={"what": what, "error": type(exc).__name__})
        raise PaymentsUnavailable(sent=True) from None
    except stripe.IdempotencyError:
        outcome = "idempotency_conflict"
        # The key was used with other parameters: what Stripe did under it is not known from this answer.
        # Never "nothing happened" (that could pay twice): the step stays claimed and staff look.
        logger.error("stripe.idempotency_conflict", extra={"what": what})
        raise PaymentsUnavailable(sent=True) from None
    except stripe.StripeError as exc:
        outcome = "refused"
        code = getattr(exc, "code", None)
        logger.info("stripe.refused", extra={"what": what, "code": code, "error": str(exc)[:500]})
        raise PaymentRefused(_refusal_in_words(exc), stripe_code=code, payment_intent_id=_failed_intent(exc)) from None
    finally:
        metrics.stripe_call_duration.labels(operation=what, outcome=outcome).observe(time.monotonic() - started)
        metrics.stripe_breaker_open.set(1 if breaker.state == "open" else 0)


def _failed_intent(exc: stripe.StripeError) -> str:
    """The id of the PaymentIntent a card error left behind, or "" (https://docs.stripe.com/api/errors)."""
    error = getattr(exc, "error", None)
    intent = getattr(error, "payment_intent", None) if error is not None else None
    if isinstance(intent, str):
        return intent
    return str(getattr(intent, "id", "") or "")


def _refusal_in_words(exc: stripe.StripeError) -> str:
    """What a client may read: a card error's message is written for the cardholder; anything else is a code.

    Stripe's other messages name internal ids and keys, which stay in our logs.
    https://docs.stripe.com/error-handling#card-errors
    """
    if isinstance(exc, stripe.CardError) and exc.user_message:
        return str(exc.user_message)
    code = getattr(exc, "code", None) or "refused"
    return f"Stripe refused the operation ({code})."


# Every write carries an idempotency key derived from our own row, so a retry or a replay cannot act twice.


async def create_payment_intent(
    *,
    amount: int,
    currency: str,
    transfer_group: str,
    metadata: dict[str, str],
    key: str,
    customer: str | None = None,
    payment_method: str | None = None,
) -> stripe.PaymentIntent:
    """A PaymentIntent on the platform for `amount` minor units of `currency`, captured when confirmed.

    https://docs.stripe.com/connect/separate-charges-and-transfers (the platform charges, transfers later).
    With `customer` and `payment_method` it is an off-session charge of a saved card, confirmed at once
    (https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method): a decline or
    `authentication_required` is a PaymentRefused that names the PaymentIntent left behind.
    """
    params: Any = {
        "amount": amount,
        "currency": currency,
        "transfer_group": transfer_group,
        "metadata": metadata,
        "capture_method": "automatic",
    }
    if customer is not None and payment_method is not None:
        params |= {"customer": customer, "payment_method": payment_method, "off_session": True, "confirm": True}
    return await _call(
        lambda c: c.v1.payment_intents.create_async(params=params, options={"idempotency_key": key}),
        what="payment_intent.create",
    )


async def confirm_payment_intent(intent_id: str, *, payment_method: str, key: str) -> stripe.PaymentIntent:
    """Confirm a PaymentIntent again, off-session, with a saved card: a retry of a failed charge.

    The same PaymentIntent is retried, never a new one, so a timesheet can be charged
    at most once (https://docs.stripe.com/api/payment_intents/confirm).
    """
    params: Any = {"payment_method": payment_method, "off_session": True}
    return await _call(
        lambda c: c.v1.payment_intents.confirm_async(intent_id, params=params, options={"idempotency_key": key}),
        what="payment_intent.confirm",
    )


async def create_customer(*, email: str, metadata: dict[str, str], key: str) -> stripe.Customer:
    """A Stripe Customer for a client, to save cards on (https://docs.stripe.com/api/customers/create)."""
    params: Any = {"email": email, "metadata": metadata}
    return await _call(
        lambda c: c.v1.customers.create_async(params=params, options={"idempotency_key": key}),
        what="customer.create",
    )


async def create_setup_intent(*, customer: str, metadata: dict[str, str], key: str) -> stripe.SetupIntent:
    """A SetupIntent that saves a card for charges made without the customer (`usage="off_session"`).

    https://docs.stripe.com/payments/save-and-reuse. Stripe.js confirms it with the client secret.
    """
    params: Any = {"customer": customer, "usage": "off_session", "metadata": metadata}
    return await _call(
        lambda c: c.v1.setup_intents.create_async(params=params, options={"idempotency_key": key}),
        what="setup_intent.create",
    )


async def retrieve_setup_intent(setup_intent_id: str) -> stripe.SetupIntent:
    return await _call(lambda c: c.v1.setup_intents.retrieve_async(setup_intent_id), what="setup_intent.retrieve")


async def retrieve_payment_method(payment_method_id: str) -> stripe.PaymentMethod:
    return await _call(lambda c: c.v1.payment_methods.retrieve_async(payment_method_id), what="payment_method.retrieve")


async def retrieve_payment_intent(intent_id: str) -> stripe.PaymentIntent:
    return await _call(lambda c: c.v1.payment_intents.retrieve_async(intent_id), what="payment_intent.retrieve")


async def cancel_payment_intent(intent_id: str, *, key: str) -> stripe.PaymentIntent:
    """Cancel a PaymentIntent that has not succeeded (https://docs.stripe.com/api/payment_intents/cancel)."""
    params: Any = {"cancellation_reason": "abandoned"}
    return await _call(
        lambda c: c.v1.payment_intents.cancel_async(intent_id, params=params, options={"idempotency_key": key}),
        what="payment_intent.cancel",
    )


async def create_transfer(
    *, amount: int, currency: str, destination: str, source_transaction: str, transfer_group: str, key: str
) -> stripe.Transfer:
    """Move `amount` minor units to a connected account, tied to the charge that funded it.

    `source_transaction` lets the Transfer use funds not yet available
    (https://docs.stripe.com/connect/separate-charges-and-transfers#transfer-availability).
    """
    params: Any = {
        "amount": amount,
        "currency": currency,
        "destination": destination,
        "source_transaction": source_transaction,
        "transfer_group": transfer_group,
    }
    return await _call(
        lambda c: c.v1.transfers.create_async(params=params, options={"idempotency_key": key}),
        what="transfer.create",
    )


async def retrieve_transfer(transfer_id: str) -> stripe.Transfer:
    return await _call(lambda c: c.v1.transfers.retrieve_async(transfer_id), what="transfer.retrieve")


async def create_refund(*, payment_intent: str, amount: int, key: str) -> stripe.Refund:
    params: Any = {"payment_intent": payment_intent, "amount": amount}
    return await _call(
        lambda c: c.v1.refunds.create_async(params=params, options={"idempotency_key": key}), what="refund.create"
    )


async def retrieve_refund(refund_id: str) -> stripe.Refund:
    return await _call(lambda c: c.v1.refunds.retrieve_async(refund_id), what="refund.retrieve")


async def retrieve_dispute(dispute_id: str) -> stripe.Dispute:
    return await _call(lambda c: c.v1.disputes.retrieve_async(dispute_id), what="dispute.retrieve")


async def create_account(*, email: str, key: str) -> stripe.Account:
    params: Any = {"type": "express", "email": email}
    return await _call(
        lambda c: c.v1.accounts.create_async(params=params, options={"idempotency_key": key}),
        what="account.create",
    )


async def retrieve_account(account_id: str) -> stripe.Account:
    return await _call(lambda c: c.v1.accounts.retrieve_async(account_id), what="account.retrieve")


async def create_account_link(*, account_id: str, refresh_url: str, return_url: str) -> stripe.AccountLink:
    params: Any = {
        "account": account_id,
        "refresh_url": refresh_url,
        "return_url": return_url,
        "type": "account_onboarding",
    }
    return await _call(lambda c: c.v1.account_links.create_async(params=params), what="account_link.create")


async def undelivered_events() -> list[stripe.Event]:
    page = await _call(
        lambda c: c.v1.events.list_async(params={"delivery_success": False, "limit": 100}), what="events.list"
    )
    return list(page.data)
