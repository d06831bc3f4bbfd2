"""Milestones through escrow, each Stripe step in atomic phases.

A step that talks to Stripe never holds a database connection or a row lock
while it waits. It runs in three phases (Brandur Leach, "Implementing
Stripe-like Idempotency Keys in Postgres"):

1. `_claim`: one short transaction locks the row, checks the move, and enters the
   step's state (FUNDING, RELEASING, REFUNDING, SETTLING, CANCELLING), stamping
   `step_claimed_at`. Commit; the connection goes back to the pool.
2. `_call`: await Stripe with the step's idempotency key, derived from the row
   (`milestone-<id>-release-<attempt>`), behind the bulkhead, breaker and deadline.
3. `_record`: a second short transaction stores the result, leaves the step's
   state and books the ledger.

A crash, a timeout or a cancelled request between phases leaves the milestone in
the step's state: the sweep (`steps_resume`) replays the call with the same key
(Stripe answers with what it did the first time) and records it, once. When
Stripe refuses (a 4xx), nothing happened there: the milestone goes back to where
it was and `step_attempt` is bumped, so a later try is a new request.

Every public operation is `async` (views await it) with a sync twin of the same
name without the `a` prefix (tasks, admin, tests).
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from hiring_requests.engagements import EngagementStatus, engagement_of
from marketplace import shutdown, telemetry
from marketplace.db import atomic_phase
from marketplace.errors import EngagementNotFound, Forbidden
from payments import gateway, locks
from payments.errors import (
    InvalidMilestone,
    MilestoneNotFound,
    MilestoneStateConflict,
    PaymentRefused,
    PaymentsUnavailable,
    PayoutAccountMissing,
    TooManyChangeRounds,
)
from payments.limits import check_amount
from payments.models import Milestone, MilestoneEvent, MilestoneStatus, PayoutAccount
from payments.services import ledger
from payments.services.transitions import alert_staff, blocking, move, require_party, visible_to

logger = logging.getLogger(__name__)

M = MilestoneStatus


def _locked(milestone_id: int, user: User | None) -> Milestone:
    milestone = locks.milestone(milestone_id)
    if not visible_to(user, milestone):
        raise MilestoneNotFound()
    return milestone


def _key(milestone: Milestone, step: str) -> str:
    return f"milestone-{milestone.pk}-{step}-{milestone.step_attempt}"


async def _finish[T](phases: Coroutine[Any, Any, T]) -> T:
    """Run the call and record phases to their end even if the caller goes away (a client disconnecting).

    The phases run as a task of their own, shielded from the caller's
    cancellation, in a fresh context: their database work then runs on asgiref's
    shared sync thread instead of the request's, which Django shuts down when the
    request ends. The step ends in one of its recorded states, never half-done.
    The fresh context keeps only the trace and the request id, so the Stripe call
    is still a span of the request. A server told to stop lets it finish first
    (`marketplace.shutdown.hold`), within its grace.
    """
    task = asyncio.get_running_loop().create_task(phases, context=telemetry.fresh_context())
    shutdown.hold(task)
    return await asyncio.shield(task)


def _payout_destination(milestone: Milestone) -> str | None:
    account = PayoutAccount.objects.filter(engineer_id=milestone.engagement.engineer_id, payouts_enabled=True).first()
    return account.stripe_account_id if account and account.stripe_account_id else None


# --- create, submit, changes: no Stripe, one transaction each -------------------------------


def milestone_create(*, client: User, engagement_id: int, title: str, amount_minor: int, due_date: date) -> Milestone:
    """A draft milestone of `amount_minor` in the engagement's currency.

    Raises EngagementNotFound (not the client's active engagement), AmountOutOfRange
    (outside Stripe's per-currency limits, see payments.limits), InvalidMilestone.
    """
    engagement = engagement_of(user=client, engagement_id=engagement_id, side="client")
    if engagement is None or engagement.status != EngagementStatus.ACTIVE:
        raise EngagementNotFound()
    check_amount(amount_minor, engagement.currency)
    if due_date < timezone.localdate():
        raise InvalidMilestone("due_date: in the future", field="due_date")
    with transaction.atomic():
        milestone = Milestone.objects.create(
            engagement=engagement,
            title=title,
            amount_minor=amount_minor,
            currency=engagement.currency,
            due_date=due_date,
        )
        MilestoneEvent.objects.create(milestone=milestone, from_status="", to_status=M.DRAFT, actor=client)
    return milestone


def milestone_submit(*, engineer: User, milestone_id: int, note: str = "") -> Milestone:
    with transaction.atomic():
        milestone = _locked(milestone_id, engineer)
        require_party(engineer, milestone, "engineer")
        milestone.submitted_at = timezone.now()
        milestone.review_deadline = milestone.submitted_at + timedelta(days=settings.MILESTONE_REVIEW_DAYS)
        if milestone.status not in (M.FUNDED, M.CHANGES_REQUESTED):
            raise MilestoneStateConflict(f"A {milestone.status} milestone cannot be submitted.")
        move(milestone, M.SUBMITTED, actor=engineer, fields=["submitted_at", "review_deadline"], note=note)
    return milestone


def milestone_request_changes(*, client: User, milestone_id: int, note: str) -> Milestone:
    """Ask for another round; the review clock stops until the engineer submits again."""
    with transaction.atomic():
        milestone = _locked(milestone_id, client)
        require_party(client, milestone, "client")
        if milestone.status != M.SUBMITTED:
            raise MilestoneStateConflict(f"A {milestone.status} milestone has nothing to review.")
        if milestone.change_rounds >= settings.MILESTONE_MAX_CHANGE_ROUNDS:
            raise TooManyChangeRounds()
        milestone.change_rounds += 1
        milestone.review_deadline = None
        move(milestone, M.CHANGES_REQUESTED, actor=client, fields=["change_rounds", "review_deadline"], note=note)
    return milestone


def milestone_dispute(*, user: User, milestone_id: int, reason: str) -> Milestone:
    """Either side freezes a submitted milestone until staff settle it."""
    if not reason.strip():
        raise InvalidMilestone("reason: say what the dispute is about", field="reason")
    with transaction.atomic():
        milestone = _locked(milestone_id, user)
        if user.pk not in (milestone.engagement.client_id, milestone.engagement.engineer_id):
            raise Forbidden("Only the engagement's client or engineer open a dispute.")
        if milestone.status not in (M.SUBMITTED, M.CHANGES_REQUESTED):
            raise MilestoneStateConflict(f"A {milestone.status} milestone cannot be disputed.")
        milestone.disputed_at, milestone.dispute_reason = timezone.now(), reason
        move(milestone, M.DISPUTED, actor=user, fields=["disputed_at", "dispute_reason"], note=reason)
        alert_staff(event="milestone.disputed", payload={"milestone_id": milestone.pk, "reason": reason})
    return milestone


# --- fund: DRAFT -> FUNDING -> AWAITING_FUNDING ----------------------------------------------


@dataclass(frozen=True)
class _Fund:
    milestone_id: int
    amount: int
    currency: str
    key: str


def _fund_claim(*, client: User, milestone_id: int) -> Milestone | _Fund:
    milestone = _locked(milestone_id, client)
    require_party(client, milestone, "client")
    if milestone.status == M.AWAITING_FUNDING and milestone.payment_intent_id:
        return milestone  # asked again: the same PaymentIntent and client secret
    if milestone.status != M.DRAFT:
        raise MilestoneStateConflict(f"A {milestone.status} milestone is not waiting to be funded.")
    move(milestone, M.FUNDING, actor=client, fields=[])
    return _Fund(milestone.pk, milestone.amount_minor, milestone.currency, _key(milestone, "fund"))


def _fund_give_back(*, milestone_id: int, refused: bool) -> None:
    milestone = locks.milestone(milestone_id)
    if milestone.status == M.FUNDING:
        milestone.step_attempt += int(refused)
        move(milestone, M.DRAFT, actor=None, fields=["step_attempt"], note="Stripe refused" if refused else "")


def _fund_record(*, milestone_id: int, intent_id: str, client_secret: str) -> Milestone:
    milestone = locks.milestone(milestone_id)
    if not milestone.payment_intent_id:
        milestone.payment_intent_id, milestone.client_secret = intent_id, client_secret
    if milestone.status == M.FUNDING:
        move(milestone, M.AWAITING_FUNDING, actor=None, fields=["payment_intent_id", "client_secret"])
    else:
        # payment_intent.succeeded was recorded first (FUNDED); keep what it wrote.
        milestone.save(update_fields=["payment_intent_id", "client_secret"])
    return milestone


async def _fund_call_and_record(plan: _Fund) -> Milestone:
    try:
        intent = await gateway.create_payment_intent(
            amount=plan.amount,
            currency=plan.currency,
            transfer_group=f"milestone-{plan.milestone_id}",
            metadata={"milestone_id": str(plan.milestone_id)},
            key=plan.key,
        )
    except PaymentsUnavailable as exc:
        if not exc.sent:
            await atomic_phase(_fund_give_back)(milestone_id=plan.milestone_id, refused=False)
        raise
    except PaymentRefused:
        await atomic_phase(_fund_give_back)(milestone_id=plan.milestone_id, refused=True)
        raise
    return await atomic_phase(_fund_record)(
        milestone_id=plan.milestone_id, intent_id=intent.id, client_secret=intent.client_secret or ""
    )


async def amilestone_fund(*, client: User, milestone_id: int) -> Milestone:
    """The PaymentIntent that funds the milestone (made once); its client secret goes to Stripe.js.

    The money arrives when Stripe says so: `payment_intent.succeeded` moves the
    milestone to funded. Raises MilestoneNotFound, Forbidden, MilestoneStateConflict,
    PaymentsUnavailable (503), PaymentRefused (402).
    """
    claimed = await atomic_phase(_fund_claim)(client=client, milestone_id=milestone_id)
    if isinstance(claimed, Milestone):
        return claimed
    return await _finish(_fund_call_and_record(claimed))


milestone_fund = blocking(amilestone_fund)


# --- funded by Stripe: AWAITING_FUNDING -> FUNDED (or refunded when nobody wants it) --------


def _funded_record(*, milestone_id: int, intent_id: str, charge_id: str) -> tuple[Milestone, bool]:
    """Book the money once. Returns (milestone, needs_refund): money for a cancelled milestone goes back."""
    milestone = locks.milestone(milestone_id)
    if milestone.status in (M.FUNDING, M.AWAITING_FUNDING):
        milestone.payment_intent_id, milestone.charge_id, milestone.funded_at = intent_id, charge_id, timezone.now()
        move(milestone, M.FUNDED, actor=None, fields=["payment_intent_id", "charge_id", "funded_at"])
        ledger.book_fund(milestone)
        return milestone, False
    if milestone.status in (M.CANCELLING, M.CANCELLED):
        milestone.payment_intent_id, milestone.charge_id, milestone.funded_at = intent_id, charge_id, timezone.now()
        ledger.book_fund(milestone)
        milestone.step_amount_minor = milestone.amount_minor
        move(
            milestone,
            M.REFUNDING,
            actor=None,
            fields=["payment_intent_id", "charge_id", "funded_at", "step_amount_minor"],
            note="paid after it was cancelled: refunded",
        )
        return milestone, True
    return milestone, False  # funded already: a duplicate or late event


async def amilestone_mark_funded(*, payment_intent_id: str) -> Milestone | None:
    """Stripe says a PaymentIntent changed: read it again and, if it succeeded, book its milestone once.

    Money that arrives for a cancelled milestone is booked and refunded at once.
    """
    intent = await gateway.retrieve_payment_intent(payment_intent_id)
    metadata = intent.metadata.to_dict() if intent.metadata is not None else {}
    milestone_id = metadata.get("milestone_id")
    if intent.status != "succeeded" or not milestone_id:
        return None
    charge = intent.latest_charge if isinstance(intent.latest_charge, str) else ""
    milestone, needs_refund = await atomic_phase(_funded_record)(
        milestone_id=int(milestone_id), intent_id=intent.id, charge_id=charge or ""
    )
    if needs_refund:
        # Owed, not asked for: a failure keeps the claim and the sweep finishes it.
        milestone = await _finish(_refund_call_and_record(_refund_plan(milestone, back_to=None)))
    return milestone


milestone_mark_funded = blocking(amilestone_mark_funded)


# --- approve and release: SUBMITTED -> RELEASING -> RELEASED ---------------------------------


@dataclass(frozen=True)
class _Release:
    milestone_id: int
    back_to: str
    amount: int
    currency: str
    destination: str
    charge_id: str
    key: str


def _release_plan(milestone: Milestone, *, back_to: str) -> _Release:
    """The Transfer as claimed: amount and destination were fixed at the claim (a replay sends the same)."""
    assert milestone.step_amount_minor is not None  # noqa: S101 - set by every release claim
    return _Release(
        milestone.pk,
        back_to,
        milestone.step_amount_minor,
        milestone.currency,
        milestone.step_destination,
        milestone.charge_id,
        _key(milestone, "release"),
    )


def _claim_release(milestone: Milestone, *, actor: User | None, destination: str, fields: list[str]) -> None:
    milestone.step_amount_minor = milestone.amount_minor - ledger.fee_for(milestone.amount_minor)
    milestone.step_destination = destination
    move(milestone, M.RELEASING, actor=actor, fields=["step_amount_minor", "step_destination", *fields])


def _approve_claim(*, client: User | None, milestone_id: int) -> Milestone | _Release:
    milestone = _locked(milestone_id, client)
    require_party(client, milestone, "client")
    if milestone.status != M.SUBMITTED:
        raise MilestoneStateConflict(f"A {milestone.status} milestone cannot be approved.")
    milestone.approved_at = timezone.now()
    destination = _payout_destination(milestone)
    if destination is None:
        # Approved; paid out by the sweep once the engineer's payouts are enabled.
        move(milestone, M.APPROVED, actor=client, fields=["approved_at"])
        return milestone
    _claim_release(milestone, actor=client, destination=destination, fields=["approved_at"])
    return _release_plan(milestone, back_to=M.SUBMITTED)


def _release_claim(*, milestone_id: int) -> Milestone | _Release:
    milestone = locks.milestone(milestone_id)
    destination = _payout_destination(milestone)
    if milestone.status != M.APPROVED or destination is None:
        return milestone
    _claim_release(milestone, actor=None, destination=destination, fields=[])
    return _release_plan(milestone, back_to=M.APPROVED)


def _release_give_back(*, milestone_id: int, back_to: str, refused: str) -> None:
    milestone = locks.milestone(milestone_id)
    if milestone.status != M.RELEASING:
        return
    milestone.step_attempt += int(bool(refused))
    if back_to == M.SUBMITTED:
        milestone.approved_at = None
    move(milestone, M(back_to), actor=None, fields=["step_attempt", "approved_at"], note=refused)
    if refused:
        alert_staff(event="milestone.release_refused", payload={"milestone_id": milestone.pk, "reason": refused})


def _release_record(*, milestone_id: int, transfer_id: str) -> Milestone:
    milestone = locks.milestone(milestone_id)
    if milestone.status != M.RELEASING:
        return milestone  # recorded already
    milestone.transfer_id, milestone.released_at = transfer_id, timezone.now()
    move(milestone, M.RELEASED, actor=None, fields=["transfer_id", "released_at"])
    ledger.book_release(milestone)
    return milestone


async def _transfer_and_book[T](
    *,
    milestone_id: int,
    amount: int,
    currency: str,
    destination: str,
    charge_id: str,
    key: str,
    record: Callable[..., T],
) -> T:
    """Call: the engineer's Transfer for a release or a settlement; then `record(milestone_id=, transfer_id=)`.

    The Transfer draws on the milestone's own charge (`source_transaction`,
    https://docs.stripe.com/connect/separate-charges-and-transfers#transfer-availability)
    and is grouped under `milestone-<id>`. `key` is the step's idempotency key, so a
    replay by the sweep gets the first Transfer back
    (https://docs.stripe.com/api/idempotent_requests). `record` runs in a phase of
    its own: a release books the ledger there; a settlement notes the Transfer and
    books once its refund is done too. Stripe's errors reach the caller, which
    decides what a refusal undoes.
    """
    transfer = await gateway.create_transfer(
        amount=amount,
        currency=currency,
        destination=destination,
        source_transaction=charge_id,
        transfer_group=f"milestone-{milestone_id}",
        key=key,
    )
    return await atomic_phase(record)(milestone_id=milestone_id, transfer_id=transfer.id)


async def _release_call_and_record(plan: _Release) -> Milestone:
    try:
        return await _transfer_and_book(
            milestone_id=plan.milestone_id,
            amount=plan.amount,
            currency=plan.currency,
            destination=plan.destination,
            charge_id=plan.charge_id,
            key=plan.key,
            record=_release_record,
        )
    except PaymentsUnavailable as exc:
        if not exc.sent:
            await atomic_phase(_release_give_back)(milestone_id=plan.milestone_id, back_to=plan.back_to, refused="")
        raise
    except PaymentRefused as exc:
        await atomic_phase(_release_give_back)(
            milestone_id=plan.milestone_id, back_to=plan.back_to, refused=f"Stripe refused the Transfer: {exc.detail}"
        )
        raise


async def amilestone_approve(*, client: User | None, milestone_id: int) -> Milestone:
    """Approve and pay out (a Transfer of the amount less the fee). `client=None` is the sweep after the review window.

    If the engineer's payouts are not enabled yet, the milestone stays approved
    and the sweep releases it once they are. Raises MilestoneNotFound, Forbidden,
    MilestoneStateConflict, PaymentsUnavailable, PaymentRefused.
    """
    claimed = await atomic_phase(_approve_claim)(client=client, milestone_id=milestone_id)
    if isinstance(claimed, Milestone):
        return claimed
    return await _finish(_release_call_and_record(claimed))


milestone_approve = blocking(amilestone_approve)


async def amilestone_release_pending(*, milestone_id: int) -> Milestone:
    """Release an approved milestone whose engineer can now be paid (the sweep)."""
    claimed = await atomic_phase(_release_claim)(milestone_id=milestone_id)
    if isinstance(claimed, Milestone):
        return claimed
    return await _finish(_release_call_and_record(claimed))


milestone_release_pending = blocking(amilestone_release_pending)


# --- refund: FUNDED -> REFUNDING -> REFUNDED -------------------------------------------------


@dataclass(frozen=True)
class _Refund:
    milestone_id: int
    # Where a refusal sends it back (the client's own refund); None: a refund the system owes keeps its claim.
    back_to: str | None
    payment_intent_id: str
    amount: int
    key: str


def _refund_plan(milestone: Milestone, back_to: str | None = M.FUNDED) -> _Refund:
    amount = milestone.amount_minor if milestone.step_amount_minor is None else milestone.step_amount_minor
    return _Refund(milestone.pk, back_to, milestone.payment_intent_id, amount, _key(milestone, "refund"))


def _refund_claim(*, client: User, milestone_id: int) -> _Refund:
    milestone = _locked(milestone_id, client)
    require_party(client, milestone, "client")
    if milestone.status != M.FUNDED:
        raise MilestoneStateConflict(
            f"Only a funded, unsubmitted milestone is refunded; this one is {milestone.status}."
        )
    milestone.step_amount_minor = milestone.amount_minor
    move(milestone, M.REFUNDING, actor=client, fields=["step_amount_minor"])
    return _refund_plan(milestone)


def _refund_give_back(*, milestone_id: int, refused: str) -> None:
    milestone = locks.milestone(milestone_id)
    if milestone.status != M.REFUNDING:
        return
    milestone.step_attempt += int(bool(refused))
    move(milestone, M.FUNDED, actor=None, fields=["step_attempt"], note=refused)
    if refused:
        alert_staff(event="milestone.refund_refused", payload={"milestone_id": milestone.pk, "reason": refused})


def _refund_record(*, milestone_id: int, refund_id: str) -> Milestone:
    milestone = locks.milestone(milestone_id)
    if milestone.status != M.REFUNDING:
        return milestone
    milestone.refund_id, milestone.refunded_at = refund_id, timezone.now()
    move(milestone, M.REFUNDED, actor=None, fields=["refund_id", "refunded_at"])
    ledger.book_refund(milestone)
    return milestone


async def _refund_call_and_record(plan: _Refund) -> Milestone:
    try:
        refund = await gateway.create_refund(payment_intent=plan.payment_intent_id, amount=plan.amount, key=plan.key)
    except PaymentsUnavailable as exc:
        if not exc.sent and plan.back_to is not None:
            await atomic_phase(_refund_give_back)(milestone_id=plan.milestone_id, refused="")
        raise
    except PaymentRefused as exc:
        if plan.back_to is not None:
            await atomic_phase(_refund_give_back)(
                milestone_id=plan.milestone_id, refused=f"Stripe refused the Refund: {exc.detail}"
            )
        raise
    return await atomic_phase(_refund_record)(milestone_id=plan.milestone_id, refund_id=refund.id)


async def amilestone_refund(*, client: User, milestone_id: int) -> Milestone:
    """Give the money back for a funded milestone the engineer has not submitted."""
    plan = await atomic_phase(_refund_claim)(client=client, milestone_id=milestone_id)
    return await _finish(_refund_call_and_record(plan))


milestone_refund = blocking(amilestone_refund)


# --- cancel: the PaymentIntent follows the milestone ----------------------------------------


def _cancel_claim(*, client: User, milestone_id: int) -> Milestone:
    milestone = _locked(milestone_id, client)
    require_party(client, milestone, "client")
    if milestone.status == M.DRAFT:
        move(milestone, M.CANCELLED, actor=client, fields=[])
    elif milestone.status == M.AWAITING_FUNDING:
        move(milestone, M.CANCELLING, actor=client, fields=[])
    else:
        raise MilestoneStateConflict(f"A {milestone.status} milestone cannot be cancelled.")
    return milestone


def _cancel_record(*, milestone_id: int) -> Milestone:
    milestone = locks.milestone(milestone_id)
    if milestone.status == M.CANCELLING:
        move(milestone, M.CANCELLED, actor=None, fields=[], note="PaymentIntent cancelled at Stripe")
    return milestone


def _cancel_give_back(*, milestone_id: int, note: str) -> None:
    milestone = locks.milestone(milestone_id)
    if milestone.status == M.CANCELLING:
        move(milestone, M.AWAITING_FUNDING, actor=None, fields=[], note=note)


async def _cancel_call_and_record(milestone: Milestone) -> Milestone:
    try:
        await gateway.cancel_payment_intent(milestone.payment_intent_id, key=_key(milestone, "cancel"))
    except PaymentsUnavailable as exc:
        if not exc.sent:
            await atomic_phase(_cancel_give_back)(milestone_id=milestone.pk, note="")
        raise
    except PaymentRefused as exc:
        if exc.stripe_code != "payment_intent_unexpected_state":
            await atomic_phase(_cancel_give_back)(milestone_id=milestone.pk, note=f"Stripe refused: {exc.detail}")
            raise
        # Too late: the client paid. Book the money and send it back.
        funded = await amilestone_mark_funded(payment_intent_id=milestone.payment_intent_id)
        if funded is not None:
            return funded
    return await atomic_phase(_cancel_record)(milestone_id=milestone.pk)


async def amilestone_cancel(*, client: User, milestone_id: int) -> Milestone:
    """Cancel an unfunded milestone; its PaymentIntent is cancelled at Stripe so it can no longer be paid.

    https://docs.stripe.com/api/payment_intents/cancel. If the payment already
    went through, the money is booked and refunded instead.
    """
    milestone = await atomic_phase(_cancel_claim)(client=client, milestone_id=milestone_id)
    if milestone.status == M.CANCELLED:
        return milestone
    return await _finish(_cancel_call_and_record(milestone))


milestone_cancel = blocking(amilestone_cancel)


# --- settle a dispute: DISPUTED -> SETTLING -> RELEASED or REFUNDED --------------------------


def _settle_claim(*, staff: User, milestone_id: int, engineer_share_minor: int) -> Milestone:
    milestone = _locked(milestone_id, staff)
    if milestone.status != M.DISPUTED:
        raise MilestoneStateConflict("Only a disputed milestone is settled.")
    if not 0 <= engineer_share_minor <= milestone.amount_minor:
        raise InvalidMilestone(
            f"engineer_share_minor: between 0 and {milestone.amount_minor}", field="engineer_share_minor"
        )
    if engineer_share_minor and _payout_destination(milestone) is None:
        raise PayoutAccountMissing()
    milestone.settle_share_minor = engineer_share_minor
    milestone.step_amount_minor = engineer_share_minor - ledger.fee_for(engineer_share_minor)
    milestone.step_destination = _payout_destination(milestone) or "" if engineer_share_minor else ""
    move(milestone, M.SETTLING, actor=staff, fields=["settle_share_minor", "step_amount_minor", "step_destination"])
    return milestone


def _settle_note_transfer(*, milestone_id: int, transfer_id: str) -> None:
    milestone = locks.milestone(milestone_id)
    if milestone.status == M.SETTLING and not milestone.transfer_id:
        milestone.transfer_id, milestone.released_at = transfer_id, timezone.now()
        milestone.save(update_fields=["transfer_id", "released_at"])


def _settle_record(*, milestone_id: int, refund_id: str, staff: User | None) -> Milestone:
    milestone = locks.milestone(milestone_id)
    if milestone.status != M.SETTLING or milestone.settle_share_minor is None:
        return milestone
    share = milestone.settle_share_minor
    if refund_id:
        milestone.refund_id, milestone.refunded_at = refund_id, timezone.now()
    move(
        milestone,
        M.RELEASED if share else M.REFUNDED,
        actor=staff,
        fields=["refund_id", "refunded_at"],
        note=f"settled: {share} to the engineer, {milestone.amount_minor - share} refunded",
    )
    ledger.book_settlement(milestone, engineer_share_minor=share)
    return milestone


def _settle_give_back(*, milestone_id: int, refused: str) -> None:
    milestone = locks.milestone(milestone_id)
    if milestone.status == M.SETTLING and not milestone.transfer_id:
        milestone.step_attempt += 1
        milestone.settle_share_minor = None
        move(milestone, M.DISPUTED, actor=None, fields=["step_attempt", "settle_share_minor"], note=refused)
    alert_staff(event="milestone.settle_refused", payload={"milestone_id": milestone.pk, "reason": refused})


async def _settle_calls_and_record(milestone: Milestone, staff: User | None) -> Milestone:
    share = milestone.settle_share_minor or 0
    refund_amount = milestone.amount_minor - share
    try:
        if share and not milestone.transfer_id:
            await _transfer_and_book(
                milestone_id=milestone.pk,
                amount=milestone.step_amount_minor or 0,
                currency=milestone.currency,
                destination=milestone.step_destination,
                charge_id=milestone.charge_id,
                key=_key(milestone, "settle-transfer"),
                record=_settle_note_transfer,
            )
        refund_id = ""
        if refund_amount:
            refund = await gateway.create_refund(
                payment_intent=milestone.payment_intent_id, amount=refund_amount, key=_key(milestone, "settle-refund")
            )
            refund_id = refund.id
    except PaymentRefused as exc:
        await atomic_phase(_settle_give_back)(milestone_id=milestone.pk, refused=f"Stripe refused: {exc.detail}")
        raise
    return await atomic_phase(_settle_record)(milestone_id=milestone.pk, refund_id=refund_id, staff=staff)


async def amilestone_settle(*, staff: User, milestone_id: int, engineer_share_minor: int) -> Milestone:
    """Staff split a disputed milestone: `engineer_share_minor` is transferred (less the fee), the rest refunded."""
    if not staff.is_staff:
        raise Forbidden("Only staff settle disputes.")
    milestone = await atomic_phase(_settle_claim)(
        staff=staff, milestone_id=milestone_id, engineer_share_minor=engineer_share_minor
    )
    return await _finish(_settle_calls_and_record(milestone, staff))


milestone_settle = blocking(amilestone_settle)


# --- recovery: finish steps whose request died ------------------------------------------------


def _resume_failed(*, milestone_id: int, error: Exception) -> None:
    """Count a failed resumption; staff hear of a stuck step once, not every minute."""
    Milestone.objects.filter(pk=milestone_id).update(step_failures=F("step_failures") + 1)
    failures = Milestone.objects.values_list("step_failures", flat=True).get(pk=milestone_id)
    logger.warning("step.resume_failed", extra={"milestone_id": milestone_id, "error": type(error).__name__})
    if failures == 1:
        alert_staff(
            event="payment_step.stuck",
            payload={"milestone_id": milestone_id, "error": type(error).__name__, "detail": str(error)[:500]},
        )


def _stale_steps(now: datetime) -> list[int]:
    stale_before = now - timedelta(seconds=settings.PAYMENT_STEP_STALE_SECONDS)
    return list(
        Milestone.objects.filter(
            status__in=[M.FUNDING, M.RELEASING, M.REFUNDING, M.SETTLING, M.CANCELLING], step_claimed_at__lt=stale_before
        ).values_list("pk", flat=True)
    )


def _take_over(*, milestone_id: int, stale_before: datetime) -> Milestone | None:
    """Compare-and-set on `step_claimed_at`: one resumer wins a stale step."""
    taken = Milestone.objects.filter(pk=milestone_id, step_claimed_at__lt=stale_before).update(
        step_claimed_at=timezone.now()
    )
    return Milestone.objects.select_related("engagement").get(pk=milestone_id) if taken == 1 else None


async def _resume(milestone: Milestone) -> Milestone:
    if milestone.status == M.FUNDING:
        plan = _Fund(milestone.pk, milestone.amount_minor, milestone.currency, _key(milestone, "fund"))
        return await _fund_call_and_record(plan)
    if milestone.status == M.RELEASING:
        # The client's approval stands; a refusal now leaves it approved for the sweep to retry.
        return await _release_call_and_record(_release_plan(milestone, back_to=M.APPROVED))
    if milestone.status == M.REFUNDING:
        return await _refund_call_and_record(_refund_plan(milestone, back_to=None))
    if milestone.status == M.SETTLING:
        return await _settle_calls_and_record(milestone, None)
    return await _cancel_call_and_record(milestone)


async def asteps_resume(*, now: datetime | None = None) -> dict[str, int]:
    """Finish every Stripe step claimed more than PAYMENT_STEP_STALE_SECONDS ago, replaying its key.

    Returns counts: `resumed` finished, `failed` still unfinished (retried next sweep).
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.PAYMENT_STEP_STALE_SECONDS)
    counts = {"resumed": 0, "failed": 0}
    for milestone_id in await atomic_phase(_stale_steps)(now):
        milestone = await atomic_phase(_take_over)(milestone_id=milestone_id, stale_before=stale_before)
        if milestone is None:
            continue
        try:
            await _resume(milestone)
        except (PaymentsUnavailable, PaymentRefused, PayoutAccountMissing) as exc:
            await atomic_phase(_resume_failed)(milestone_id=milestone_id, error=exc)
            counts["failed"] += 1
            continue
        counts["resumed"] += 1
    return counts


steps_resume = blocking(asteps_resume)


async def apayments_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Once a minute: finish abandoned steps, approve what waited out the review window, release what can be."""
    now = now or timezone.now()
    counts = await asteps_resume(now=now)
    counts |= {"auto_approved": 0, "released": 0}
    due = await atomic_phase(_due_for_approval)(now)
    for milestone_id in due:
        try:
            await amilestone_approve(client=None, milestone_id=milestone_id)
            counts["auto_approved"] += 1
        except (MilestoneStateConflict, PaymentsUnavailable, PaymentRefused):
            continue
    for milestone_id in await atomic_phase(_approved)():
        try:
            if (await amilestone_release_pending(milestone_id=milestone_id)).status == M.RELEASED:
                counts["released"] += 1
        except (PaymentsUnavailable, PaymentRefused, PayoutAccountMissing):
            continue
    return counts


def _due_for_approval(now: datetime) -> list[int]:
    return list(Milestone.objects.filter(status=M.SUBMITTED, review_deadline__lte=now).values_list("pk", flat=True))


def _approved() -> list[int]:
    return list(Milestone.objects.filter(status=M.APPROVED).values_list("pk", flat=True))


payments_sweep = blocking(apayments_sweep)
