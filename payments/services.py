"""Every write about money: onboarding, milestones, the ledger, webhooks.

Rules that keep the money right:
- every Stripe write carries an idempotency key derived from our own row
  (`milestone-<id>-release`), so a retry, a replay or a second worker can never
  make a second Transfer or Refund;
- a milestone changes state under `select_for_update`, and the Stripe call that
  goes with the change is made while the lock is held: if Stripe fails, the
  transaction rolls back and nothing is half-done;
- every movement is booked in the double-entry ledger under a unique reference
  (`release:<id>`), so it is booked at most once; escrow cannot go negative (a
  database constraint).
"""

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from hiring_requests.models import Conversation, Engagement
from hiring_requests.services import system_message_post
from marketplace.errors import Forbidden
from marketplace.notifications import notify_user
from payments.errors import (
    EngagementNotFound,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidMilestone,
    InvalidSignature,
    MilestoneNotFound,
    MilestoneStateConflict,
    PaymentsUnavailable,
    PayoutAccountMissing,
    TooManyChangeRounds,
)
from payments.gateway import gateway
from payments.models import (
    IdempotencyRecord,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
    Milestone,
    MilestoneEvent,
    MilestoneStatus,
    PayoutAccount,
    StripeEvent,
)

logger = logging.getLogger(__name__)

M = MilestoneStatus
WEBHOOK_TOLERANCE_SECONDS = 300


# --- ledger ---------------------------------------------------------------------------


def ledger_account(kind: LedgerAccountKind, owner: str, currency: str) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(
        code=f"{kind}:{owner}:{currency}", defaults={"kind": kind, "currency": currency}
    )
    return account


def ledger_post(
    *, reference: str, kind: str, milestone: Milestone | None, lines: list[tuple[LedgerAccount, int]]
) -> LedgerTransaction | None:
    """Book one movement. Returns None if `reference` was booked before (nothing is booked twice).

    Entries must sum to zero per currency. Balances move in the same
    transaction; an escrow going below zero violates a constraint and undoes all.
    """
    totals: dict[str, int] = {}
    for account, amount in lines:
        totals[account.currency] = totals.get(account.currency, 0) + amount
    if any(totals.values()) or not lines:
        raise ValueError(f"ledger lines for {reference} do not balance: {totals}")
    try:
        with transaction.atomic():
            booked = LedgerTransaction.objects.create(reference=reference, kind=kind, milestone=milestone)
    except IntegrityError:
        return None
    for account, amount in lines:
        if amount == 0:
            continue
        LedgerEntry.objects.create(transaction=booked, account=account, amount=amount, currency=account.currency)
        LedgerAccount.objects.filter(pk=account.pk).update(balance=F("balance") + amount)
    return booked


def _escrow(milestone: Milestone) -> LedgerAccount:
    return ledger_account(LedgerAccountKind.ESCROW, f"milestone-{milestone.pk}", milestone.currency)


def _client_funding(milestone: Milestone) -> LedgerAccount:
    return ledger_account(
        LedgerAccountKind.CLIENT_FUNDING, f"client-{milestone.engagement.client_id}", milestone.currency
    )


def _engineer_payout(milestone: Milestone) -> LedgerAccount:
    return ledger_account(
        LedgerAccountKind.ENGINEER_PAYOUT, f"engineer-{milestone.engagement.engineer_id}", milestone.currency
    )


def _platform_fee(currency: str) -> LedgerAccount:
    return ledger_account(LedgerAccountKind.PLATFORM_FEE, "platform", currency)


def fee_for(amount: int) -> int:
    return amount * settings.PLATFORM_FEE_BP // 10_000


# --- onboarding -----------------------------------------------------------------------


def payout_onboarding_start(*, engineer: User, return_url: str) -> str:
    """An Express account for the engineer (made once) and a fresh onboarding link to it."""
    if not engineer.is_engineer:
        raise Forbidden("Only engineers get paid out.")
    account, _ = PayoutAccount.objects.get_or_create(engineer=engineer)
    if not account.stripe_account_id:
        created = gateway().create_account(email=engineer.email, key=f"payout-account-{engineer.pk}")
        PayoutAccount.objects.filter(pk=account.pk, stripe_account_id="").update(stripe_account_id=created.id)
        account.refresh_from_db()
    link = gateway().create_account_link(
        account_id=account.stripe_account_id, refresh_url=return_url, return_url=return_url
    )
    return str(link.url)


def payout_account_sync(*, stripe_account_id: str) -> PayoutAccount | None:
    """Read the account from Stripe (never trust the event's copy) and store payouts_enabled."""
    remote = gateway().retrieve_account(stripe_account_id)
    account = PayoutAccount.objects.filter(stripe_account_id=stripe_account_id).first()
    if account is None:
        return None
    if account.payouts_enabled != bool(remote.payouts_enabled):
        account.payouts_enabled = bool(remote.payouts_enabled)
        account.save(update_fields=["payouts_enabled", "updated_at"])
        notify_user(
            user_id=account.engineer_id, event="payouts.updated", payload={"payouts_enabled": account.payouts_enabled}
        )
    return account


# --- milestones -----------------------------------------------------------------------


def _record(milestone: Milestone, from_status: str, actor: User | None, note: str = "") -> None:
    MilestoneEvent.objects.create(
        milestone=milestone, from_status=from_status, to_status=milestone.status, actor=actor, note=note
    )
    engagement = milestone.engagement
    payload = {"milestone_id": milestone.pk, "status": milestone.status, "amount_minor": milestone.amount_minor}
    for user_id in (engagement.client_id, engagement.engineer_id):
        notify_user(user_id=user_id, event="milestone.changed", payload=payload)
    conversation = Conversation.objects.filter(
        request_id=engagement.request_id, engineer_id=engagement.engineer_id
    ).first()
    if conversation is not None and milestone.status in (M.FUNDED, M.SUBMITTED, M.RELEASED, M.REFUNDED, M.DISPUTED):
        transaction.on_commit(
            lambda: system_message_post(
                conversation_id=conversation.pk, payload={"event": f"milestone.{milestone.status}", **payload}
            )
        )
    logger.info("milestone.moved", extra={"milestone_id": milestone.pk, "from": from_status, "to": milestone.status})


def _move(
    milestone: Milestone,
    to: MilestoneStatus,
    *,
    allowed: tuple[str, ...],
    actor: User | None,
    fields: list[str],
    note: str = "",
) -> None:
    if milestone.status not in allowed:
        raise MilestoneStateConflict(f"A {milestone.status} milestone cannot become {to}.")
    from_status = milestone.status
    milestone.status = to
    milestone.save(update_fields=["status", *fields])
    _record(milestone, from_status, actor, note)


def _lock(milestone_id: int, *, user: User | None) -> Milestone:
    """The milestone, locked, if `user` is its client or engineer (None: the system itself)."""
    queryset = Milestone.objects.select_for_update().select_related("engagement").filter(pk=milestone_id)
    milestone = queryset.first()
    if milestone is None:
        raise MilestoneNotFound()
    if user is not None and not (
        user.is_staff or user.pk in (milestone.engagement.client_id, milestone.engagement.engineer_id)
    ):
        raise MilestoneNotFound()
    return milestone


def _require(user: User, milestone: Milestone, side: str) -> None:
    expected = milestone.engagement.client_id if side == "client" else milestone.engagement.engineer_id
    if user.pk != expected:
        raise Forbidden(f"Only the engagement's {side} can do this.")


def milestone_create(*, client: User, engagement_id: int, title: str, amount_minor: int, due_date: date) -> Milestone:
    engagement = Engagement.objects.filter(pk=engagement_id, client=client, status="active").first()
    if engagement is None:
        raise EngagementNotFound()
    if amount_minor <= 0:
        raise InvalidMilestone("amount_minor: more than zero")
    if due_date < timezone.localdate():
        raise InvalidMilestone("due_date: in the future")
    with transaction.atomic():
        milestone = Milestone.objects.create(
            engagement=engagement,
            title=title,
            amount_minor=amount_minor,
            currency=engagement.currency,
            due_date=due_date,
        )
        _record(milestone, "", client)
    return milestone


def _fund_key(milestone: Milestone) -> str:
    return f"milestone-{milestone.pk}-fund"


def milestone_fund(*, client: User, milestone_id: int) -> Milestone:
    """Create (or find again) the PaymentIntent that funds the milestone; its client secret goes to Stripe.js.

    The money arrives when Stripe says so: `payment_intent.succeeded` moves
    the milestone to funded.
    """
    with transaction.atomic():
        milestone = _lock(milestone_id, user=client)
        _require(client, milestone, "client")
        if milestone.status not in (M.DRAFT, M.AWAITING_FUNDING):
            raise MilestoneStateConflict(f"A {milestone.status} milestone is not waiting for funds.")
        intent = gateway().create_payment_intent(
            amount=milestone.amount_minor,
            currency=milestone.currency,
            transfer_group=f"milestone-{milestone.pk}",
            metadata={"milestone_id": str(milestone.pk)},
            key=_fund_key(milestone),
        )
        milestone.payment_intent_id, milestone.client_secret = intent.id, intent.client_secret
        if milestone.status == M.DRAFT:
            _move(
                milestone,
                M.AWAITING_FUNDING,
                allowed=(M.DRAFT,),
                actor=client,
                fields=["payment_intent_id", "client_secret"],
            )
        else:
            milestone.save(update_fields=["payment_intent_id", "client_secret"])
    return milestone


def milestone_mark_funded(*, payment_intent_id: str) -> Milestone | None:
    """Stripe says a PaymentIntent changed: read it again and, if it succeeded, fund its milestone once."""
    intent = gateway().retrieve_payment_intent(payment_intent_id)
    metadata = intent.metadata.to_dict() if intent.metadata is not None else {}
    milestone_id = metadata.get("milestone_id")
    if intent.status != "succeeded" or not milestone_id:
        return None
    with transaction.atomic():
        milestone = _lock(int(milestone_id), user=None)
        if milestone.status not in (M.DRAFT, M.AWAITING_FUNDING):
            return milestone  # funded already (a duplicate or late event)
        milestone.payment_intent_id, milestone.charge_id, milestone.funded_at = (
            intent.id,
            intent.latest_charge,
            timezone.now(),
        )
        _move(
            milestone, M.FUNDED, allowed=(M.DRAFT, M.AWAITING_FUNDING), actor=None,
            fields=["payment_intent_id", "charge_id", "funded_at"],
        )  # fmt: skip
        ledger_post(
            reference=f"fund:{milestone.pk}",
            kind="fund",
            milestone=milestone,
            lines=[(_escrow(milestone), milestone.amount_minor), (_client_funding(milestone), -milestone.amount_minor)],
        )
    return milestone


def milestone_submit(*, engineer: User, milestone_id: int, note: str = "") -> Milestone:
    with transaction.atomic():
        milestone = _lock(milestone_id, user=engineer)
        _require(engineer, milestone, "engineer")
        milestone.submitted_at = timezone.now()
        milestone.review_deadline = milestone.submitted_at + timedelta(days=settings.MILESTONE_REVIEW_DAYS)
        _move(
            milestone, M.SUBMITTED, allowed=(M.FUNDED, M.CHANGES_REQUESTED), actor=engineer,
            fields=["submitted_at", "review_deadline"], note=note,
        )  # fmt: skip
    return milestone


def milestone_request_changes(*, client: User, milestone_id: int, note: str) -> Milestone:
    """Ask for another round; the review clock stops until the engineer submits again."""
    with transaction.atomic():
        milestone = _lock(milestone_id, user=client)
        _require(client, milestone, "client")
        if milestone.status == M.SUBMITTED and milestone.change_rounds >= settings.MILESTONE_MAX_CHANGE_ROUNDS:
            raise TooManyChangeRounds()
        milestone.change_rounds += 1
        milestone.review_deadline = None
        _move(
            milestone, M.CHANGES_REQUESTED, allowed=(M.SUBMITTED,), actor=client,
            fields=["change_rounds", "review_deadline"], note=note,
        )  # fmt: skip
    return milestone


def _payout_destination(milestone: Milestone) -> str | None:
    account = PayoutAccount.objects.filter(engineer_id=milestone.engagement.engineer_id, payouts_enabled=True).first()
    return account.stripe_account_id if account and account.stripe_account_id else None


def _release(milestone: Milestone) -> None:
    """Transfer the amount less the fee to the engineer and book it. The caller holds the lock."""
    destination = _payout_destination(milestone)
    if destination is None:
        raise PayoutAccountMissing()
    fee = fee_for(milestone.amount_minor)
    transfer = gateway().create_transfer(
        amount=milestone.amount_minor - fee,
        currency=milestone.currency,
        destination=destination,
        source_transaction=milestone.charge_id,
        transfer_group=f"milestone-{milestone.pk}",
        key=f"milestone-{milestone.pk}-release",
    )
    milestone.transfer_id, milestone.released_at = transfer.id, timezone.now()
    _move(milestone, M.RELEASED, allowed=(M.APPROVED,), actor=None, fields=["transfer_id", "released_at"])
    ledger_post(
        reference=f"release:{milestone.pk}",
        kind="release",
        milestone=milestone,
        lines=[
            (_escrow(milestone), -milestone.amount_minor),
            (_engineer_payout(milestone), milestone.amount_minor - fee),
            (_platform_fee(milestone.currency), fee),
        ],
    )


def milestone_approve(*, client: User | None, milestone_id: int) -> Milestone:
    """Approve and pay out. `client=None` is the sweep approving after the review window.

    If the engineer's payouts are not enabled yet, the milestone stays approved
    and the sweep releases it once they are. If Stripe fails, nothing changes.
    """
    with transaction.atomic():
        milestone = _lock(milestone_id, user=client)
        if client is not None:
            _require(client, milestone, "client")
        milestone.approved_at = timezone.now()
        _move(milestone, M.APPROVED, allowed=(M.SUBMITTED,), actor=client, fields=["approved_at"])
        if _payout_destination(milestone) is not None:
            _release(milestone)
    return milestone


def milestone_release_pending(*, milestone_id: int) -> Milestone:
    with transaction.atomic():
        milestone = _lock(milestone_id, user=None)
        if milestone.status == M.APPROVED and _payout_destination(milestone) is not None:
            _release(milestone)
    return milestone


def milestone_refund(*, client: User, milestone_id: int) -> Milestone:
    """Give the money back for a funded milestone the engineer has not submitted."""
    with transaction.atomic():
        milestone = _lock(milestone_id, user=client)
        _require(client, milestone, "client")
        if milestone.status != M.FUNDED:
            raise MilestoneStateConflict(
                f"Only a funded, unsubmitted milestone is refunded; this one is {milestone.status}."
            )
        refund = gateway().create_refund(
            payment_intent=milestone.payment_intent_id,
            amount=milestone.amount_minor,
            key=f"milestone-{milestone.pk}-refund",
        )
        milestone.refund_id, milestone.refunded_at = refund.id, timezone.now()
        _move(milestone, M.REFUNDED, allowed=(M.FUNDED,), actor=client, fields=["refund_id", "refunded_at"])
        ledger_post(
            reference=f"refund:{milestone.pk}",
            kind="refund",
            milestone=milestone,
            lines=[(_escrow(milestone), -milestone.amount_minor), (_client_funding(milestone), milestone.amount_minor)],
        )
    return milestone


def milestone_cancel(*, client: User, milestone_id: int) -> Milestone:
    with transaction.atomic():
        milestone = _lock(milestone_id, user=client)
        _require(client, milestone, "client")
        _move(milestone, M.CANCELLED, allowed=(M.DRAFT, M.AWAITING_FUNDING), actor=client, fields=[])
    return milestone


def _alert_staff(milestone: Milestone, reason: str) -> None:
    for staff_id in User.objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True):
        notify_user(
            user_id=staff_id, event="milestone.disputed", payload={"milestone_id": milestone.pk, "reason": reason}
        )


def milestone_dispute(*, user: User, milestone_id: int, reason: str) -> Milestone:
    """Either side freezes a submitted milestone until staff settle it."""
    if not reason.strip():
        raise InvalidMilestone("reason: say what the dispute is about")
    with transaction.atomic():
        milestone = _lock(milestone_id, user=user)
        if user.pk not in (milestone.engagement.client_id, milestone.engagement.engineer_id):
            raise Forbidden("Only the engagement's client or engineer open a dispute.")
        milestone.disputed_at, milestone.dispute_reason = timezone.now(), reason
        _move(
            milestone, M.DISPUTED, allowed=(M.SUBMITTED, M.CHANGES_REQUESTED), actor=user,
            fields=["disputed_at", "dispute_reason"], note=reason,
        )  # fmt: skip
        _alert_staff(milestone, reason)
    return milestone


def milestone_dispute_from_stripe(*, charge_id: str, reason: str) -> Milestone | None:
    """A chargeback: freeze whatever the milestone was doing and tell staff."""
    with transaction.atomic():
        milestone = (
            Milestone.objects.select_for_update().select_related("engagement").filter(charge_id=charge_id).first()
        )
        if milestone is None or milestone.status == M.DISPUTED:
            return milestone
        milestone.disputed_at, milestone.dispute_reason = timezone.now(), f"card dispute: {reason}"
        _move(
            milestone, M.DISPUTED, allowed=(M.FUNDED, M.SUBMITTED, M.CHANGES_REQUESTED, M.APPROVED), actor=None,
            fields=["disputed_at", "dispute_reason"], note=milestone.dispute_reason,
        )  # fmt: skip
        _alert_staff(milestone, milestone.dispute_reason)
    return milestone


def milestone_settle(*, staff: User, milestone_id: int, engineer_share_minor: int) -> Milestone:
    """Staff split a disputed milestone: `engineer_share_minor` is transferred (less the fee), the rest refunded."""
    if not staff.is_staff:
        raise Forbidden("Only staff settle disputes.")
    with transaction.atomic():
        milestone = _lock(milestone_id, user=staff)
        if milestone.status != M.DISPUTED:
            raise MilestoneStateConflict("Only a disputed milestone is settled.")
        if not 0 <= engineer_share_minor <= milestone.amount_minor:
            raise InvalidMilestone(f"engineer_share_minor: between 0 and {milestone.amount_minor}")
        refund_amount = milestone.amount_minor - engineer_share_minor
        fee = fee_for(engineer_share_minor)
        lines = [(_escrow(milestone), -milestone.amount_minor)]
        if engineer_share_minor:
            destination = _payout_destination(milestone)
            if destination is None:
                raise PayoutAccountMissing()
            transfer = gateway().create_transfer(
                amount=engineer_share_minor - fee, currency=milestone.currency, destination=destination,
                source_transaction=milestone.charge_id, transfer_group=f"milestone-{milestone.pk}",
                key=f"milestone-{milestone.pk}-settle-transfer",
            )  # fmt: skip
            milestone.transfer_id, milestone.released_at = transfer.id, timezone.now()
            lines += [
                (_engineer_payout(milestone), engineer_share_minor - fee),
                (_platform_fee(milestone.currency), fee),
            ]
        if refund_amount:
            refund = gateway().create_refund(
                payment_intent=milestone.payment_intent_id,
                amount=refund_amount,
                key=f"milestone-{milestone.pk}-settle-refund",
            )
            milestone.refund_id, milestone.refunded_at = refund.id, timezone.now()
            lines.append((_client_funding(milestone), refund_amount))
        final = M.RELEASED if engineer_share_minor else M.REFUNDED
        _move(
            milestone, final, allowed=(M.DISPUTED,), actor=staff,
            fields=["transfer_id", "released_at", "refund_id", "refunded_at"],
            note=f"settled: {engineer_share_minor} to the engineer, {refund_amount} refunded",
        )  # fmt: skip
        ledger_post(reference=f"settle:{milestone.pk}", kind="settle", milestone=milestone, lines=lines)
    return milestone


# --- the sweep and recovery ------------------------------------------------------------


def payments_sweep(*, now: Any = None) -> dict[str, int]:
    """Approve what waited out the review window; release approvals whose payouts are now enabled."""
    now = now or timezone.now()
    counts = {"auto_approved": 0, "released": 0}
    due = Milestone.objects.filter(status=M.SUBMITTED, review_deadline__lte=now).values_list("pk", flat=True)
    for milestone_id in due:
        try:
            milestone_approve(client=None, milestone_id=milestone_id)
            counts["auto_approved"] += 1
        except (MilestoneStateConflict, PaymentsUnavailable):
            continue
    for milestone_id in Milestone.objects.filter(status=M.APPROVED).values_list("pk", flat=True):
        try:
            if milestone_release_pending(milestone_id=milestone_id).status == M.RELEASED:
                counts["released"] += 1
        except (PaymentsUnavailable, PayoutAccountMissing):
            continue
    return counts


# --- webhooks ---------------------------------------------------------------------------


def stripe_event_receive(*, payload: bytes, signature: str | None) -> tuple[StripeEvent, bool]:
    """Verify, then store under Stripe's event id before anything else. Returns (event, new)."""
    from payments import tasks

    if not signature:
        raise InvalidSignature("The Stripe-Signature header is missing.")
    try:
        event = stripe.Webhook.construct_event(
            payload.decode(), signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidSignature(str(exc)) from None
    with transaction.atomic():
        stored, created = StripeEvent.objects.get_or_create(
            stripe_id=event.id, defaults={"type": event.type, "payload": json.loads(payload)}
        )
        if created:
            tasks.process_stripe_event.delay_on_commit(stored.pk)
    return stored, created


HANDLERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "payment_intent.succeeded": lambda obj: milestone_mark_funded(payment_intent_id=obj["id"]),
    "account.updated": lambda obj: payout_account_sync(stripe_account_id=obj["id"]),
    "charge.dispute.created": lambda obj: milestone_dispute_from_stripe(
        charge_id=obj["charge"], reason=obj.get("reason", "")
    ),
}


def stripe_event_process(*, event_id: int) -> bool:
    """Apply a stored event. Handlers re-read objects from Stripe, so order and duplicates do not matter."""
    event = StripeEvent.objects.get(pk=event_id)
    if event.processed_at is not None:
        return False
    StripeEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    handler = HANDLERS.get(event.type)
    try:
        if handler is not None:
            handler(event.payload["data"]["object"])
    except Exception as exc:
        StripeEvent.objects.filter(pk=event.pk).update(last_error=repr(exc)[:2000])
        raise
    return StripeEvent.objects.filter(pk=event.pk, processed_at=None).update(processed_at=timezone.now()) == 1


def stripe_events_reconcile() -> int:
    """Store and process events Stripe could not deliver to us. Returns how many were missing here."""
    from payments import tasks

    missing = 0
    for remote in gateway().undelivered_events():
        data = remote.to_dict()
        stored, created = StripeEvent.objects.get_or_create(
            stripe_id=data["id"], defaults={"type": data["type"], "payload": data}
        )
        if created or stored.processed_at is None:
            missing += int(created)
            tasks.process_stripe_event.delay_on_commit(stored.pk)
    return missing


def ledger_compare_with_stripe() -> list[str]:
    """Differences between our books and Stripe's objects, in words (empty: they agree).

    Funded milestones must have a succeeded PaymentIntent for their amount;
    released ones a Transfer for what the ledger paid the engineer; refunded
    ones a refund on their charge.
    """
    differences = []
    held = Milestone.objects.filter(status__in=[M.FUNDED, M.SUBMITTED, M.CHANGES_REQUESTED, M.APPROVED, M.RELEASED])
    for milestone in held.exclude(payment_intent_id=""):
        intent = gateway().retrieve_payment_intent(milestone.payment_intent_id)
        if intent.status != "succeeded" or intent.amount_received != milestone.amount_minor:
            differences.append(
                f"milestone {milestone.pk}: Stripe's PaymentIntent is {intent.status} for {intent.amount_received}, "
                f"the ledger holds {milestone.amount_minor}"
            )
    for milestone in Milestone.objects.filter(status=M.RELEASED).exclude(transfer_id=""):
        transfer = gateway().retrieve_transfer(milestone.transfer_id)
        paid = sum(
            LedgerEntry.objects.filter(
                transaction__milestone=milestone, account__kind=LedgerAccountKind.ENGINEER_PAYOUT
            ).values_list("amount", flat=True)
        )
        at_stripe = transfer.amount - transfer.amount_reversed
        if at_stripe != paid:
            differences.append(
                f"milestone {milestone.pk}: Stripe's Transfer {transfer.id} is {at_stripe}, the ledger paid {paid}"
            )
    for difference in differences:
        logger.error("reconcile.difference", extra={"difference": difference})
    return differences


# --- our own idempotency ------------------------------------------------------------------


def idempotent(
    *, user: User, key: str | None, fingerprint_of: Any, run: Callable[[], tuple[int, Any]]
) -> tuple[int, Any]:
    """Run once per (user, Idempotency-Key): the same key and body replay the first answer.

    A different body with the same key is refused; the same key arriving while
    the first is still running is refused too, so concurrent copies run once.
    """
    if not key:
        return run()
    fingerprint = hashlib.sha256(json.dumps(fingerprint_of, sort_keys=True, default=str).encode()).hexdigest()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(user=user, key=key[:255], fingerprint=fingerprint)
    except IntegrityError:
        existing = IdempotencyRecord.objects.get(user=user, key=key[:255])
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused() from None
        if existing.status_code is None:
            raise IdempotencyKeyInFlight() from None
        return existing.status_code, existing.body
    try:
        status, body = run()
    except Exception:
        # Nothing was done, so the key is free to use again.
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=status, body=body)
    return status, body
