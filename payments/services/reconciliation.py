"""Our books against Stripe's objects: every record that is not final is checked with Stripe.

`ledger_compare_with_stripe` is what `ledger_check` and the reconcile task run.
It reads Stripe's own objects (PaymentIntents, Transfers, Refunds, Disputes),
not only the events Stripe failed to deliver, so money that moved at Stripe
without our books following shows up as a difference.
"""

import logging
from collections.abc import Sequence

from django.db.models import Sum

from marketplace.db import atomic_phase
from payments import gateway
from payments.models import (
    ESCROW_HELD,
    Dispute,
    LedgerAccountKind,
    LedgerEntry,
    Milestone,
    MilestoneStatus,
    Timesheet,
    TimesheetStatus,
)
from payments.services.transitions import blocking

logger = logging.getLogger(__name__)

M = MilestoneStatus
T = TimesheetStatus


def _milestones(statuses: Sequence[str]) -> list[Milestone]:
    return list(Milestone.objects.filter(status__in=statuses).exclude(payment_intent_id="").order_by("pk"))


def _paid_to_engineer(milestone_id: int) -> int:
    return int(
        LedgerEntry.objects.filter(
            transaction__milestone_id=milestone_id, account__kind=LedgerAccountKind.ENGINEER_PAYOUT
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )


def _disputes() -> list[Dispute]:
    return list(Dispute.objects.order_by("pk"))


async def aledger_compare_with_stripe() -> list[str]:
    """Differences between our books and Stripe's objects, in words (empty: they agree).

    - awaiting funding, funding, cancelling, cancelled: Stripe's PaymentIntent has not succeeded;
    - money held or paid out: the PaymentIntent succeeded for the milestone's amount;
    - released: the Transfer (less reversals) is what the ledger paid the engineer;
    - refunded: the Refund exists for the amount refunded;
    - disputes: each one we recorded has Stripe's current status.
    Raises PaymentsUnavailable when Stripe cannot be asked.
    """
    differences = []
    unpaid = [M.FUNDING, M.AWAITING_FUNDING, M.CANCELLING, M.CANCELLED]
    for milestone in await atomic_phase(_milestones)(unpaid):
        intent = await gateway.retrieve_payment_intent(milestone.payment_intent_id)
        if intent.status == "succeeded":
            differences.append(
                f"milestone {milestone.pk} is {milestone.status} but Stripe captured {intent.amount_received} "
                f"{intent.currency} on PaymentIntent {intent.id}"
            )
    paid = sorted({*ESCROW_HELD, M.RELEASED, M.REFUNDED, M.CHARGED_BACK})
    for milestone in await atomic_phase(_milestones)(paid):
        intent = await gateway.retrieve_payment_intent(milestone.payment_intent_id)
        if intent.status != "succeeded" or intent.amount_received != milestone.amount_minor:
            differences.append(
                f"milestone {milestone.pk}: Stripe's PaymentIntent is {intent.status} for {intent.amount_received}, "
                f"the ledger holds {milestone.amount_minor}"
            )
        if milestone.status == M.RELEASED and milestone.transfer_id:
            transfer = await gateway.retrieve_transfer(milestone.transfer_id)
            ours = await atomic_phase(_paid_to_engineer)(milestone.pk)
            at_stripe = transfer.amount - transfer.amount_reversed
            if at_stripe != ours:
                differences.append(
                    f"milestone {milestone.pk}: Stripe's Transfer {transfer.id} is {at_stripe}, the ledger paid {ours}"
                )
        if milestone.status == M.REFUNDED and milestone.refund_id:
            refund = await gateway.retrieve_refund(milestone.refund_id)
            expected = milestone.amount_minor - (milestone.settle_share_minor or 0)
            if refund.status not in ("succeeded", "pending") or refund.amount != expected:
                differences.append(
                    f"milestone {milestone.pk}: Stripe's Refund {refund.id} is {refund.status} for {refund.amount}, "
                    f"the ledger refunded {expected}"
                )
    differences += await _timesheet_differences()
    for dispute in await atomic_phase(_disputes)():
        remote = await gateway.retrieve_dispute(dispute.stripe_id)
        if remote.amount != dispute.amount_minor:
            differences.append(
                f"dispute {dispute.stripe_id}: Stripe says {remote.amount}, we recorded {dispute.amount_minor}"
            )
    for difference in differences:
        logger.error("reconcile.difference", extra={"difference": difference})
    return differences


def _timesheets(statuses: Sequence[str]) -> list[Timesheet]:
    return list(Timesheet.objects.filter(status__in=statuses).exclude(payment_intent_id="").order_by("pk"))


async def _timesheet_differences() -> list[str]:
    """Hourly weeks: a charged one's PaymentIntent succeeded for its amount; a failed one's has not."""
    differences = []
    for timesheet in await atomic_phase(_timesheets)([T.CHARGED, T.PAYING, T.PAID, T.CHARGE_FAILED]):
        intent = await gateway.retrieve_payment_intent(timesheet.payment_intent_id)
        charged = intent.status == "succeeded"
        if timesheet.status == T.CHARGE_FAILED and charged:
            differences.append(
                f"timesheet {timesheet.pk} is charge_failed but Stripe captured {intent.amount_received} "
                f"{intent.currency} on PaymentIntent {intent.id}"
            )
        elif timesheet.status != T.CHARGE_FAILED and (not charged or intent.amount_received != timesheet.amount_minor):
            differences.append(
                f"timesheet {timesheet.pk}: Stripe's PaymentIntent is {intent.status} for {intent.amount_received}, "
                f"the ledger holds {timesheet.amount_minor}"
            )
    return differences


ledger_compare_with_stripe = blocking(aledger_compare_with_stripe)


async def acatch_up_with_stripe() -> int:
    """Book what Stripe did that our records missed: a captured PaymentIntent whose milestone or week never heard.

    Returns how many were caught up (a cancelled milestone's money is refunded; a week is paid out).
    """
    from payments.services.milestones import amilestone_mark_funded

    caught_up = 0
    for milestone in await atomic_phase(_milestones)([M.FUNDING, M.AWAITING_FUNDING, M.CANCELLING, M.CANCELLED]):
        intent = await gateway.retrieve_payment_intent(milestone.payment_intent_id)
        if intent.status == "succeeded":
            await amilestone_mark_funded(payment_intent_id=intent.id)
            caught_up += 1
    from payments.services.timesheet_billing import atimesheet_mark_charged

    for timesheet in await atomic_phase(_timesheets)([T.CHARGING, T.CHARGE_FAILED]):
        intent = await gateway.retrieve_payment_intent(timesheet.payment_intent_id)
        if intent.status == "succeeded":
            await atimesheet_mark_charged(payment_intent_id=intent.id)
            caught_up += 1
    return caught_up


catch_up_with_stripe = blocking(acatch_up_with_stripe)
