"""Every call to Stripe goes through here: a timeout, bounded retries with the same idempotency key, a breaker.

While the breaker is open, calls fail at once with PaymentsUnavailable (503 and
Retry-After), so no request waits on a Stripe that is down.
"""

import functools
import logging
from collections.abc import Callable
from typing import Any

import stripe
from django.conf import settings

from marketplace.resilience import CircuitBreaker, CircuitOpen, retrying
from payments.errors import PaymentRefused, PaymentsUnavailable

logger = logging.getLogger(__name__)

_TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


def _is_transient(exc: Exception) -> bool:
    return isinstance(exc, _TRANSIENT)


class StripeGateway:
    def __init__(self) -> None:
        self.client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            http_client=stripe.HTTPXClient(timeout=settings.STRIPE_TIMEOUT_SECONDS, allow_sync_methods=True),
            max_network_retries=0,  # ours below: jittered, bounded, behind the breaker
        )
        self.breaker = CircuitBreaker(
            "stripe",
            failure_threshold=settings.STRIPE_BREAKER_FAILURES,
            reset_after=settings.STRIPE_BREAKER_RESET_SECONDS,
        )

    def _call[T](self, operation: Callable[[], T], *, what: str) -> T:
        try:
            return self.breaker.call(
                lambda: retrying(operation, attempts=settings.STRIPE_RETRY_ATTEMPTS, is_retryable=_is_transient),
                counts_as_failure=_is_transient,
            )
        except CircuitOpen as exc:
            raise PaymentsUnavailable(retry_after=int(exc.retry_after) + 1) from None
        except _TRANSIENT as exc:
            logger.warning("stripe.unavailable", extra={"what": what, "error": type(exc).__name__})
            raise PaymentsUnavailable() from None
        except stripe.StripeError as exc:
            logger.info("stripe.refused", extra={"what": what, "code": getattr(exc, "code", None)})
            raise PaymentRefused(str(exc.user_message or exc)) from None

    # Every write carries an idempotency key derived from our own row, so a retry cannot act twice.

    def create_payment_intent(
        self, *, amount: int, currency: str, transfer_group: str, metadata: dict[str, str], key: str
    ) -> Any:
        params: Any = {
            "amount": amount,
            "currency": currency,
            "transfer_group": transfer_group,
            "metadata": metadata,
            "capture_method": "automatic",
        }
        return self._call(
            lambda: self.client.v1.payment_intents.create(params=params, options={"idempotency_key": key}),
            what="payment_intent.create",
        )

    def retrieve_payment_intent(self, intent_id: str) -> Any:
        return self._call(lambda: self.client.v1.payment_intents.retrieve(intent_id), what="payment_intent.retrieve")

    def create_transfer(
        self, *, amount: int, currency: str, destination: str, source_transaction: str, transfer_group: str, key: str
    ) -> Any:
        params: Any = {
            "amount": amount,
            "currency": currency,
            "destination": destination,
            "source_transaction": source_transaction,
            "transfer_group": transfer_group,
        }
        return self._call(
            lambda: self.client.v1.transfers.create(params=params, options={"idempotency_key": key}),
            what="transfer.create",
        )

    def retrieve_transfer(self, transfer_id: str) -> Any:
        return self._call(lambda: self.client.v1.transfers.retrieve(transfer_id), what="transfer.retrieve")

    def create_refund(self, *, payment_intent: str, amount: int, key: str) -> Any:
        params: Any = {"payment_intent": payment_intent, "amount": amount}
        return self._call(
            lambda: self.client.v1.refunds.create(params=params, options={"idempotency_key": key}), what="refund.create"
        )

    def create_account(self, *, email: str, key: str) -> Any:
        params: Any = {"type": "express", "email": email}
        return self._call(
            lambda: self.client.v1.accounts.create(params=params, options={"idempotency_key": key}),
            what="account.create",
        )

    def retrieve_account(self, account_id: str) -> Any:
        return self._call(lambda: self.client.v1.accounts.retrieve(account_id), what="account.retrieve")

    def create_account_link(self, *, account_id: str, refresh_url: str, return_url: str) -> Any:
        params: Any = {
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        }
        return self._call(lambda: self.client.v1.account_links.create(params=params), what="account_link.create")

    def undelivered_events(self) -> list[Any]:
        page = self._call(
            lambda: self.client.v1.events.list(params={"delivery_success": False, "limit": 100}),
            what="events.list",
        )
        return list(page.data)


@functools.cache
def gateway() -> StripeGateway:
    """One per process, so the breaker sees every call this process makes."""
    return StripeGateway()
