"""Charging an approved week off-session and paying the engineer, each Stripe step in atomic phases.

As for milestones (`payments.services.milestones`): a short transaction claims the
step (CHARGING or PAYING, stamping `step_claimed_at`), Stripe is awaited with no
connection or lock held, a second short transaction records the result; the sweep
replays a step whose request died, with the same idempotency key.

Never two charges for one week:
- The claim moves the row under its lock, so of an approval racing the auto-approve,
  two sweeps, or twenty approvals at once, one claims and the others see the new state.
- A week has one PaymentIntent, ever. The first charge creates it (key
  `timesheet-<id>-charge-<attempt>`); a retry confirms the same PaymentIntent again
  (key `timesheet-<id>-confirm-<failures>`), and a PaymentIntent succeeds at most once.
- A webhook that records the charge before the API call returns leaves the call's
  record with nothing to do.

A decline or `authentication_required` (https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method)
moves the week to CHARGE_FAILED and tells the client how to fix it. Retries follow
TIMESHEET_CHARGE_RETRY_DAYS (days after the first failure); after the last, the
engagement's billing is paused and the engineer told to stop logging until the client pays.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from marketplace.db import atomic_phase
from marketplace.errors import Forbidden
from marketplace.notifications import notify_user
from payments import gateway
from payments.errors import PaymentRefused, PaymentsUnavailable, TimesheetStateConflict
from payments.models import BillingStatus, Customer, HourlyBilling, PayoutAccount, Timesheet, TimesheetStatus
from payments.services import ledger
from payments.services.hourly import billing_move, chat_post, fix_links, lock_billing, lock_timesheet, move
from payments.services.milestones import _finish
from payments.services.transitions import alert_staff, blocking

logger = logging.getLogger(__name__)

T = TimesheetStatus
# Stripe's codes for a charge the card or its bank refused (https://docs.stripe.com/error-codes):
# the PaymentIntent exists and waits for another payment method or a confirmation.
_CARD_FAILURES = frozenset(
    {
        "card_declined",
        "authentication_required",
        "expired_card",
        "incorrect_cvc",
        "insufficient_funds",
        "processing_error",
        "incorrect_number",
    }
)


# --- charge: SUBMITTED / APPROVED / CHARGE_FAILED -> CHARGING -> CHARGED or CHARGE_FAILED -----


@dataclass(frozen=True)
class _Charge:
    timesheet_id: int
    back_to: str
    amount: int
    currency: str
    customer: str
    payment_method: str
    payment_intent_id: str
    key: str


def _charge_plan(timesheet: Timesheet, customer: str, *, back_to: str) -> _Charge:
    if timesheet.payment_intent_id:
        key = f"timesheet-{timesheet.pk}-confirm-{timesheet.charge_failures}-{timesheet.step_attempt}"
    else:
        key = f"timesheet-{timesheet.pk}-charge-{timesheet.step_attempt}"
    return _Charge(
        timesheet.pk,
        back_to,
        timesheet.amount_minor,
        timesheet.currency,
        customer,
        timesheet.step_payment_method,
        timesheet.payment_intent_id,
        key,
    )


def _customer_of(timesheet: Timesheet) -> str:
    found = Customer.objects.filter(client_id=timesheet.engagement.client_id).values_list(
        "stripe_customer_id", flat=True
    )
    return found.first() or ""


def _charge_claim(
    *,
    actor: User | None,
    timesheet_id: int,
    approving: bool,
    due_by: datetime | None = None,
    client_asked: bool = False,
) -> Timesheet | _Charge:
    """Approve (SUBMITTED) or charge again (APPROVED, CHARGE_FAILED); claim the charge if the card can be used.

    With `due_by` (the sweep's clock), a failed week is retried only if its retry is
    due by then: the sweep read it as due before taking the lock, and another sweep
    (or the client) may have retried it meanwhile. Returns the plan to send, or the
    timesheet when there is nothing to send now. A paused engagement's card is tried
    again only when the client asks (`client_asked`: "pay now").
    """
    timesheet = lock_timesheet(timesheet_id, actor)
    if approving:
        if actor is not None and actor.pk != timesheet.engagement.client_id:
            raise Forbidden("Only the engagement's client approves its timesheets.")
        if timesheet.status != T.SUBMITTED:
            raise TimesheetStateConflict(f"A {timesheet.status} timesheet cannot be approved.")
        timesheet.approved_at = timezone.now()
    elif timesheet.status not in (T.APPROVED, T.CHARGE_FAILED):
        return timesheet
    elif (
        timesheet.status == T.CHARGE_FAILED
        and due_by is not None
        and (timesheet.next_charge_at is None or timesheet.next_charge_at > due_by)
    ):
        return timesheet  # retried meanwhile, by another sweep or the client
    billing = HourlyBilling.objects.get(engagement_id=timesheet.engagement_id)
    customer = _customer_of(timesheet)
    usable = billing.status == BillingStatus.ACTIVE or (client_asked and billing.status == BillingStatus.PAUSED)
    if not usable or not billing.payment_method_id or not customer:
        if approving:
            move(timesheet, T.APPROVED, actor=actor, fields=["approved_at"], note="charged once the card works")
        return timesheet
    back_to = T.APPROVED if timesheet.status in (T.SUBMITTED, T.APPROVED) else T.CHARGE_FAILED
    timesheet.step_payment_method = billing.payment_method_id
    move(timesheet, T.CHARGING, actor=actor, fields=["approved_at", "step_payment_method"])
    return _charge_plan(timesheet, customer, back_to=back_to)


def _charge_give_back(*, timesheet_id: int, back_to: str, refused: str) -> None:
    """Nothing happened at Stripe (never sent, or refused outright): back to where the claim started."""
    timesheet = lock_timesheet(timesheet_id, None)
    if timesheet.status != T.CHARGING:
        return
    timesheet.step_attempt += int(bool(refused))
    move(timesheet, T(back_to), actor=None, fields=["step_attempt"], note=refused)
    if refused:
        alert_staff(event="timesheet.charge_refused", payload={"timesheet_id": timesheet.pk, "reason": refused})


def _retry_gap(failures: int) -> timedelta | None:
    """Time from failure number `failures` to the next try, or None after the last (TIMESHEET_CHARGE_RETRY_DAYS)."""
    days = settings.TIMESHEET_CHARGE_RETRY_DAYS
    if failures > len(days):
        return None
    return timedelta(days=days[failures - 1] - (days[failures - 2] if failures > 1 else 0))


def _charge_failed(*, timesheet_id: int, intent_id: str, code: str, message: str) -> Timesheet:
    """A card failure: record it, schedule the retry or pause the engagement, tell both sides."""
    timesheet = lock_timesheet(timesheet_id, None)
    if timesheet.status != T.CHARGING:
        return timesheet  # recorded already, or charged by a webhook meanwhile
    timesheet.payment_intent_id = timesheet.payment_intent_id or intent_id
    timesheet.charge_failures += 1
    timesheet.failure_code, timesheet.failure_message = code, message[:500]
    gap = _retry_gap(timesheet.charge_failures)
    timesheet.next_charge_at = timezone.now() + gap if gap is not None else None
    move(
        timesheet,
        T.CHARGE_FAILED,
        actor=None,
        fields=["payment_intent_id", "charge_failures", "failure_code", "failure_message", "next_charge_at"],
        note=f"{code}: {message}",
    )
    if gap is None:
        _pause(timesheet)
    return timesheet


def _pause(timesheet: Timesheet) -> None:
    billing = lock_billing(timesheet.engagement_id)
    if billing.status != BillingStatus.ACTIVE:
        return
    billing.paused_at = timezone.now()
    billing_move(billing, BillingStatus.PAUSED, fields=["paused_at"])
    engagement = timesheet.engagement
    payload = {
        "engagement_id": engagement.pk,
        "status": billing.status,
        "timesheet_id": timesheet.pk,
        "message": "The client's payment failed. Do not log more hours until the client has paid.",
    }
    for user_id in (engagement.client_id, engagement.engineer_id):
        notify_user(user_id=user_id, event="billing.changed", payload=payload)
    chat_post(engagement, {"event": "billing.paused", **payload, "fix": fix_links(timesheet)})


def _unpause_if_paid(timesheet: Timesheet) -> None:
    billing = lock_billing(timesheet.engagement_id)
    unpaid = Timesheet.objects.filter(engagement_id=timesheet.engagement_id, status=T.CHARGE_FAILED).exists()
    if billing.status == BillingStatus.PAUSED and not unpaid:
        billing.paused_at = None
        billing_move(billing, BillingStatus.ACTIVE, fields=["paused_at"])
        engagement = timesheet.engagement
        payload = {"engagement_id": engagement.pk, "status": billing.status}
        for user_id in (engagement.client_id, engagement.engineer_id):
            notify_user(user_id=user_id, event="billing.changed", payload=payload)
        chat_post(engagement, {"event": "billing.active", **payload})


def _charged_record(*, timesheet_id: int, intent_id: str, charge_id: str) -> Timesheet:
    """Book the week's money once, whoever records it first (the call's answer or the webhook)."""
    timesheet = lock_timesheet(timesheet_id, None)
    if timesheet.status not in (T.CHARGING, T.CHARGE_FAILED):
        return timesheet
    timesheet.payment_intent_id, timesheet.charge_id, timesheet.charged_at = intent_id, charge_id, timezone.now()
    timesheet.next_charge_at = None
    move(timesheet, T.CHARGED, actor=None, fields=["payment_intent_id", "charge_id", "charged_at", "next_charge_at"])
    ledger.book_timesheet_charge(timesheet)
    _unpause_if_paid(timesheet)
    return timesheet


async def _charge_call_and_record(plan: _Charge) -> Timesheet:
    try:
        if plan.payment_intent_id:
            intent = await gateway.confirm_payment_intent(
                plan.payment_intent_id, payment_method=plan.payment_method, key=plan.key
            )
        else:
            intent = await gateway.create_payment_intent(
                amount=plan.amount,
                currency=plan.currency,
                transfer_group=f"timesheet-{plan.timesheet_id}",
                metadata={"timesheet_id": str(plan.timesheet_id)},
                key=plan.key,
                customer=plan.customer,
                payment_method=plan.payment_method,
            )
    except PaymentsUnavailable as exc:
        if not exc.sent:
            await atomic_phase(_charge_give_back)(timesheet_id=plan.timesheet_id, back_to=plan.back_to, refused="")
        raise
    except PaymentRefused as exc:
        if exc.stripe_code == "payment_intent_unexpected_state" and plan.payment_intent_id:
            # Confirmed meanwhile by the client in Stripe.js (or being confirmed): read what it is.
            return await _after_unexpected_state(plan)
        if exc.stripe_code in _CARD_FAILURES or exc.payment_intent_id:
            return await atomic_phase(_charge_failed)(
                timesheet_id=plan.timesheet_id,
                intent_id=exc.payment_intent_id,
                code=exc.stripe_code or "card_declined",
                message=exc.detail,
            )
        await atomic_phase(_charge_give_back)(
            timesheet_id=plan.timesheet_id, back_to=plan.back_to, refused=f"Stripe refused the charge: {exc.detail}"
        )
        raise
    if intent.status != "succeeded":
        # Off-session, Stripe answers a card that needs the customer with an error; treat anything else alike.
        return await atomic_phase(_charge_failed)(
            timesheet_id=plan.timesheet_id,
            intent_id=intent.id,
            code="authentication_required",
            message=f"The payment is {intent.status}; the client must confirm it.",
        )
    charged = await atomic_phase(_charged_record)(
        timesheet_id=plan.timesheet_id, intent_id=intent.id, charge_id=_charge_of(intent)
    )
    return await _pay(charged)


async def _after_unexpected_state(plan: _Charge) -> Timesheet:
    intent = await gateway.retrieve_payment_intent(plan.payment_intent_id)
    if intent.status == "succeeded":
        charged = await atomic_phase(_charged_record)(
            timesheet_id=plan.timesheet_id, intent_id=intent.id, charge_id=_charge_of(intent)
        )
        return await _pay(charged)
    if intent.status == "requires_action":
        # The client began confirming in Stripe.js and did not finish: still unpaid, and it counts as a
        # failed try, so the schedule moves on (and ends in a pause) instead of retrying every minute.
        return await atomic_phase(_charge_failed)(
            timesheet_id=plan.timesheet_id,
            intent_id=intent.id,
            code="authentication_required",
            message="The payment waits for the client to finish confirming it.",
        )
    await atomic_phase(_charge_give_back)(timesheet_id=plan.timesheet_id, back_to=plan.back_to, refused="")
    return await atomic_phase(lock_timesheet)(plan.timesheet_id, None)


def _charge_of(intent: object) -> str:
    latest = getattr(intent, "latest_charge", None)
    return latest if isinstance(latest, str) else str(getattr(latest, "id", "") or "")


async def atimesheet_approve(*, client: User | None, timesheet_id: int) -> Timesheet:
    """Approve a submitted week and charge it off-session; `client=None` is the sweep after the review window.

    Charged when the engagement has a saved card (else approved, and charged once it
    has); paid out at once when the engineer can be paid. A failed charge is a state
    (CHARGE_FAILED), not an error. Raises TimesheetNotFound, Forbidden,
    TimesheetStateConflict, PaymentsUnavailable.
    """
    claimed = await atomic_phase(_charge_claim)(actor=client, timesheet_id=timesheet_id, approving=True)
    if isinstance(claimed, Timesheet):
        return claimed
    return await _finish(_charge_call_and_record(claimed))


timesheet_approve = blocking(atimesheet_approve)


async def atimesheet_charge(
    *, timesheet_id: int, due_by: datetime | None = None, client_asked: bool = False
) -> Timesheet:
    """Charge an approved week, or retry a failed one now (a new card, the client's "pay now", a staff settlement).

    The sweep passes its clock as `due_by`: a failed week is then retried only if its retry is still due.
    `client_asked`: the client's "pay now", which tries the card even while the engagement is paused.
    """
    claimed = await atomic_phase(_charge_claim)(
        actor=None, timesheet_id=timesheet_id, approving=False, due_by=due_by, client_asked=client_asked
    )
    if isinstance(claimed, Timesheet):
        return claimed
    return await _finish(_charge_call_and_record(claimed))


timesheet_charge = blocking(atimesheet_charge)


@dataclass(frozen=True)
class PayNow:
    """The week after the client's "pay now", and the client secret when Stripe.js must confirm the payment."""

    timesheet: Timesheet
    client_secret: str


def _pay_now_check(*, client: User, timesheet_id: int) -> Timesheet:
    timesheet = lock_timesheet(timesheet_id, client)
    if client.pk != timesheet.engagement.client_id:
        raise Forbidden("Only the engagement's client pays its timesheets.")
    if timesheet.status != T.CHARGE_FAILED:
        raise TimesheetStateConflict(f"A {timesheet.status} timesheet has no failed charge to pay.")
    billing = HourlyBilling.objects.get(engagement_id=timesheet.engagement_id)
    if (
        billing.payment_method_id != timesheet.step_payment_method
        or timesheet.failure_code != "authentication_required"
    ):
        # A new card (or a decline worth trying again): charged now.
        Timesheet.objects.filter(pk=timesheet.pk).update(next_charge_at=timezone.now())
    return timesheet


async def atimesheet_pay_now(*, client: User, timesheet_id: int) -> PayNow:
    """The client fixes a failed charge: charge again now, or get the client secret to confirm it in Stripe.js.

    After `authentication_required` with the same card, Stripe needs the cardholder:
    the answer carries the PaymentIntent's client secret, and the webhook records the
    charge when they confirm. Otherwise (a new card, a decline) the week is charged
    again at once. Raises TimesheetNotFound, Forbidden, TimesheetStateConflict, PaymentsUnavailable.
    """
    timesheet = await atomic_phase(_pay_now_check)(client=client, timesheet_id=timesheet_id)
    if timesheet.failure_code == "authentication_required" and timesheet.payment_intent_id:
        billing = await atomic_phase(lambda: HourlyBilling.objects.get(engagement_id=timesheet.engagement_id))()
        if billing.payment_method_id == timesheet.step_payment_method:
            intent = await gateway.retrieve_payment_intent(timesheet.payment_intent_id)
            if intent.status == "succeeded":
                return PayNow(await _record_and_pay(timesheet.pk, intent), "")
            return PayNow(timesheet, intent.client_secret or "")
    return PayNow(await atimesheet_charge(timesheet_id=timesheet.pk, client_asked=True), "")


async def _record_and_pay(timesheet_id: int, intent: object) -> Timesheet:
    charged = await atomic_phase(_charged_record)(
        timesheet_id=timesheet_id, intent_id=str(getattr(intent, "id", "")), charge_id=_charge_of(intent)
    )
    return await _finish(_pay(charged))


async def atimesheet_mark_charged(*, payment_intent_id: str) -> Timesheet | None:
    """Stripe says a week's PaymentIntent succeeded: read it again, book the charge once, pay the engineer."""
    intent = await gateway.retrieve_payment_intent(payment_intent_id)
    metadata = intent.metadata.to_dict() if intent.metadata is not None else {}
    timesheet_id = metadata.get("timesheet_id")
    if intent.status != "succeeded" or not timesheet_id:
        return None
    return await _record_and_pay(int(timesheet_id), intent)


timesheet_mark_charged = blocking(atimesheet_mark_charged)


# --- pay out: CHARGED -> PAYING -> PAID ----------------------------------------------------


@dataclass(frozen=True)
class _Payout:
    timesheet_id: int
    amount: int
    currency: str
    destination: str
    charge_id: str
    key: str


def _payout_plan(timesheet: Timesheet) -> _Payout:
    assert timesheet.step_amount_minor is not None  # noqa: S101 - set by every payout claim
    return _Payout(
        timesheet.pk,
        timesheet.step_amount_minor,
        timesheet.currency,
        timesheet.step_destination,
        timesheet.charge_id,
        f"timesheet-{timesheet.pk}-transfer-{timesheet.step_attempt}",
    )


def _pay_claim(*, timesheet_id: int) -> Timesheet | _Payout:
    timesheet = lock_timesheet(timesheet_id, None)
    if timesheet.status != T.CHARGED:
        return timesheet
    account = PayoutAccount.objects.filter(engineer_id=timesheet.engagement.engineer_id, payouts_enabled=True).first()
    if account is None or not account.stripe_account_id:
        return timesheet  # paid by the sweep once the engineer's payouts are enabled
    timesheet.step_amount_minor = timesheet.amount_minor - ledger.fee_for(timesheet.amount_minor)
    timesheet.step_destination = account.stripe_account_id
    move(timesheet, T.PAYING, actor=None, fields=["step_amount_minor", "step_destination"])
    return _payout_plan(timesheet)


def _pay_give_back(*, timesheet_id: int, refused: str) -> None:
    timesheet = lock_timesheet(timesheet_id, None)
    if timesheet.status != T.PAYING:
        return
    timesheet.step_attempt += int(bool(refused))
    move(timesheet, T.CHARGED, actor=None, fields=["step_attempt"], note=refused)
    if refused:
        alert_staff(event="timesheet.payout_refused", payload={"timesheet_id": timesheet.pk, "reason": refused})


def _paid_record(*, timesheet_id: int, transfer_id: str) -> Timesheet:
    timesheet = lock_timesheet(timesheet_id, None)
    if timesheet.status != T.PAYING:
        return timesheet
    timesheet.transfer_id, timesheet.paid_at = transfer_id, timezone.now()
    move(timesheet, T.PAID, actor=None, fields=["transfer_id", "paid_at"])
    ledger.book_timesheet_payout(timesheet)
    return timesheet


async def _pay_call_and_record(plan: _Payout) -> Timesheet:
    try:
        transfer = await gateway.create_transfer(
            amount=plan.amount,
            currency=plan.currency,
            destination=plan.destination,
            source_transaction=plan.charge_id,
            transfer_group=f"timesheet-{plan.timesheet_id}",
            key=plan.key,
        )
    except PaymentsUnavailable as exc:
        if not exc.sent:
            await atomic_phase(_pay_give_back)(timesheet_id=plan.timesheet_id, refused="")
        raise
    except PaymentRefused as exc:
        await atomic_phase(_pay_give_back)(
            timesheet_id=plan.timesheet_id, refused=f"Stripe refused the Transfer: {exc.detail}"
        )
        raise
    return await atomic_phase(_paid_record)(timesheet_id=plan.timesheet_id, transfer_id=transfer.id)


async def _pay(timesheet: Timesheet) -> Timesheet:
    """Pay the engineer for a charged week (a Transfer with `source_transaction`), if they can be paid now.

    A failure to pay leaves the week charged (or its step claimed) for the sweep; the
    client's charge has succeeded either way, so it is logged, not raised.
    """
    claimed = await atomic_phase(_pay_claim)(timesheet_id=timesheet.pk)
    if isinstance(claimed, Timesheet):
        return claimed
    try:
        return await _pay_call_and_record(claimed)
    except (PaymentsUnavailable, PaymentRefused) as exc:
        logger.warning("timesheet.payout_deferred", extra={"timesheet_id": timesheet.pk, "error": type(exc).__name__})
        return await atomic_phase(lock_timesheet)(timesheet.pk, None)


# --- the sweep ------------------------------------------------------------------------------


def _stale(now: datetime) -> list[int]:
    stale_before = now - timedelta(seconds=settings.PAYMENT_STEP_STALE_SECONDS)
    return list(
        Timesheet.objects.filter(status__in=[T.CHARGING, T.PAYING], step_claimed_at__lt=stale_before).values_list(
            "pk", flat=True
        )
    )


def _take_over(*, timesheet_id: int, stale_before: datetime) -> Timesheet | None:
    """Compare-and-set on `step_claimed_at`: one resumer wins a stale step."""
    taken = Timesheet.objects.filter(pk=timesheet_id, step_claimed_at__lt=stale_before).update(
        step_claimed_at=timezone.now()
    )
    return Timesheet.objects.select_related("engagement").get(pk=timesheet_id) if taken == 1 else None


def _resume_failed(*, timesheet_id: int, error: Exception) -> None:
    Timesheet.objects.filter(pk=timesheet_id).update(step_failures=F("step_failures") + 1)
    failures = Timesheet.objects.values_list("step_failures", flat=True).get(pk=timesheet_id)
    logger.warning("timesheet.resume_failed", extra={"timesheet_id": timesheet_id, "error": type(error).__name__})
    if failures == 1:
        alert_staff(event="payment_step.stuck", payload={"timesheet_id": timesheet_id, "error": type(error).__name__})


def _due(now: datetime) -> tuple[list[int], list[int], list[int]]:
    """(to auto-approve, to charge or retry now, to pay out)."""
    approve = Timesheet.objects.filter(status=T.SUBMITTED, review_deadline__lte=now)
    active = {"engagement__billing__status": BillingStatus.ACTIVE}
    charge = Timesheet.objects.filter(status=T.APPROVED, **active) | Timesheet.objects.filter(
        status=T.CHARGE_FAILED, next_charge_at__lte=now, **active
    )
    pay = Timesheet.objects.filter(status=T.CHARGED)
    return (
        list(approve.order_by("pk").values_list("pk", flat=True)),
        list(charge.order_by("pk").values_list("pk", flat=True)),
        list(pay.order_by("pk").values_list("pk", flat=True)),
    )


async def atimesheets_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Once a minute (in the payments sweep): finish abandoned steps, approve weeks whose review window
    passed, charge approved weeks and retries that are due, pay charged weeks. Returns counts."""
    now = now or timezone.now()
    counts = {"resumed": 0, "failed": 0, "auto_approved": 0, "charged": 0, "paid": 0}
    stale_before = now - timedelta(seconds=settings.PAYMENT_STEP_STALE_SECONDS)
    for timesheet_id in await atomic_phase(_stale)(now):
        timesheet = await atomic_phase(_take_over)(timesheet_id=timesheet_id, stale_before=stale_before)
        if timesheet is None:
            continue
        try:
            if timesheet.status == T.CHARGING:
                back_to = T.CHARGE_FAILED if timesheet.charge_failures else T.APPROVED
                customer = await atomic_phase(_customer_of)(timesheet)
                await _charge_call_and_record(_charge_plan(timesheet, customer, back_to=back_to))
            else:
                await _pay_call_and_record(_payout_plan(timesheet))
        except (PaymentsUnavailable, PaymentRefused) as exc:
            await atomic_phase(_resume_failed)(timesheet_id=timesheet_id, error=exc)
            counts["failed"] += 1
            continue
        counts["resumed"] += 1
    approve, charge, pay = await atomic_phase(_due)(now)
    for timesheet_id in approve:
        try:
            await atimesheet_approve(client=None, timesheet_id=timesheet_id)
            counts["auto_approved"] += 1
        except (TimesheetStateConflict, PaymentsUnavailable):
            continue
    for timesheet_id in charge:
        try:
            charged = await atimesheet_charge(timesheet_id=timesheet_id, due_by=now)
            if charged.status in (T.CHARGED, T.PAYING, T.PAID):
                counts["charged"] += 1
        except PaymentsUnavailable:
            continue
    for timesheet_id in pay:
        if (await _pay(await atomic_phase(lock_timesheet)(timesheet_id, None))).status == T.PAID:
            counts["paid"] += 1
    return counts


timesheets_sweep = blocking(atimesheets_sweep)


def _waiting_for_card(engagement_id: int) -> list[int]:
    return list(
        Timesheet.objects.filter(engagement_id=engagement_id, status__in=[T.APPROVED, T.CHARGE_FAILED])
        .order_by("week_start")
        .values_list("pk", flat=True)
    )


async def atimesheets_resume_for(*, engagement_id: int) -> int:
    """Charge the engagement's weeks that waited for a working card (after `setup_intent.succeeded`).

    Returns how many were charged; a week Stripe could not be asked about is left to the sweep.
    """
    charged = 0
    for timesheet_id in await atomic_phase(_waiting_for_card)(engagement_id):
        try:
            if (await atimesheet_charge(timesheet_id=timesheet_id)).status in (T.CHARGED, T.PAYING, T.PAID):
                charged += 1
        except PaymentsUnavailable:
            continue
    return charged
