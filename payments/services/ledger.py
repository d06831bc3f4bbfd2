"""The double-entry ledger: every movement of money, booked once, balanced per currency.

Accounts are named `<kind>:<owner>:<currency>` (`account_code`). Signs: money a client pays in is
-amount on their `client_funding` account and +amount on the milestone's
`escrow`; every transaction's entries sum to zero per currency, and escrow never
goes below zero (a database constraint).
"""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from payments.models import (
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
    LedgerTransactionKind,
    Milestone,
    Timesheet,
)


def account_code(kind: LedgerAccountKind, owner: str, currency: str) -> str:
    """A ledger account's code, `<kind>:<owner>:<currency>`: `escrow:milestone-12:usd`.

    `owner` is `milestone-<id>` or `timesheet-<id>` for an escrow, `client-<user id>`
    for client funding, `engineer-<user id>` for a payout, and `platform` for the
    fee and dispute exposure; `currency` is the lower-case ISO code.
    """
    return f"{kind}:{owner}:{currency}"


def ledger_account(kind: LedgerAccountKind, owner: str, currency: str) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(
        code=account_code(kind, owner, currency), defaults={"kind": kind, "currency": currency}
    )
    return account


def ledger_post(
    *,
    reference: str,
    kind: LedgerTransactionKind,
    milestone: Milestone | None,
    lines: list[tuple[LedgerAccount, int]],
    timesheet: Timesheet | None = None,
) -> LedgerTransaction | None:
    """Book one movement (`lines`: account and signed minor units). None if `reference` was booked before.

    Raises ValueError when the lines do not sum to zero per currency; an escrow
    going below zero violates a constraint (IntegrityError) and undoes all of it.
    """
    totals: dict[str, int] = {}
    for account, amount in lines:
        totals[account.currency] = totals.get(account.currency, 0) + amount
    if any(totals.values()) or not lines:
        raise ValueError(f"ledger lines for {reference} do not balance: {totals}")
    try:
        with transaction.atomic():
            booked = LedgerTransaction.objects.create(
                reference=reference, kind=kind, milestone=milestone, timesheet=timesheet
            )
    except IntegrityError:
        return None
    for account, amount in lines:
        if amount == 0:
            continue
        LedgerEntry.objects.create(transaction=booked, account=account, amount=amount, currency=account.currency)
        LedgerAccount.objects.filter(pk=account.pk).update(balance=F("balance") + amount)
    return booked


def escrow_code(milestone: Milestone) -> str:
    return account_code(LedgerAccountKind.ESCROW, f"milestone-{milestone.pk}", milestone.currency)


def escrow(milestone: Milestone) -> LedgerAccount:
    return ledger_account(LedgerAccountKind.ESCROW, f"milestone-{milestone.pk}", milestone.currency)


def client_funding_of(client_id: int, currency: str) -> LedgerAccount:
    return ledger_account(LedgerAccountKind.CLIENT_FUNDING, f"client-{client_id}", currency)


def engineer_payout_of(engineer_id: int, currency: str) -> LedgerAccount:
    return ledger_account(LedgerAccountKind.ENGINEER_PAYOUT, f"engineer-{engineer_id}", currency)


def client_funding(milestone: Milestone) -> LedgerAccount:
    return client_funding_of(milestone.engagement.client_id, milestone.currency)


def engineer_payout(milestone: Milestone) -> LedgerAccount:
    return engineer_payout_of(milestone.engagement.engineer_id, milestone.currency)


def platform_fee(currency: str) -> LedgerAccount:
    return ledger_account(LedgerAccountKind.PLATFORM_FEE, "platform", currency)


def dispute_exposure(currency: str) -> LedgerAccount:
    return ledger_account(LedgerAccountKind.DISPUTE_EXPOSURE, "platform", currency)


def fee_for(amount_minor: int) -> int:
    """The platform's fee on `amount_minor`: PLATFORM_FEE_BP basis points, rounded down to a whole minor unit.

    Rounding down is the rule: a fraction of a minor unit always stays with the
    engineer (10% of 1,005 cents is 100 cents, not 101).
    """
    return amount_minor * settings.PLATFORM_FEE_BP // 10_000


def book_fund(milestone: Milestone) -> None:
    """The client's money arrived in escrow (once per milestone)."""
    ledger_post(
        reference=f"fund:{milestone.pk}",
        kind=LedgerTransactionKind.FUND,
        milestone=milestone,
        lines=[(escrow(milestone), milestone.amount_minor), (client_funding(milestone), -milestone.amount_minor)],
    )


def book_release(milestone: Milestone) -> None:
    """Escrow paid out: the engineer's Transfer and the platform's fee."""
    fee = fee_for(milestone.amount_minor)
    ledger_post(
        reference=f"release:{milestone.pk}",
        kind=LedgerTransactionKind.RELEASE,
        milestone=milestone,
        lines=[
            (escrow(milestone), -milestone.amount_minor),
            (engineer_payout(milestone), milestone.amount_minor - fee),
            (platform_fee(milestone.currency), fee),
        ],
    )


def book_refund(milestone: Milestone) -> None:
    """Escrow given back to the client in full."""
    ledger_post(
        reference=f"refund:{milestone.pk}",
        kind=LedgerTransactionKind.REFUND,
        milestone=milestone,
        lines=[(escrow(milestone), -milestone.amount_minor), (client_funding(milestone), milestone.amount_minor)],
    )


def book_settlement(milestone: Milestone, *, engineer_share_minor: int) -> None:
    """Escrow split by staff: the engineer's share (less the fee) paid out, the rest refunded."""
    fee = fee_for(engineer_share_minor)
    refund = milestone.amount_minor - engineer_share_minor
    lines = [(escrow(milestone), -milestone.amount_minor)]
    if engineer_share_minor:
        lines += [(engineer_payout(milestone), engineer_share_minor - fee), (platform_fee(milestone.currency), fee)]
    if refund:
        lines.append((client_funding(milestone), refund))
    ledger_post(reference=f"settle:{milestone.pk}", kind=LedgerTransactionKind.SETTLE, milestone=milestone, lines=lines)


def book_dispute_exposure(milestone: Milestone, *, dispute_id: str, amount_minor: int) -> None:
    """A chargeback after the money left escrow: the client got it back; the platform carries the loss."""
    ledger_post(
        reference=f"dispute:{dispute_id}",
        kind=LedgerTransactionKind.DISPUTE,
        milestone=milestone,
        lines=[(client_funding(milestone), amount_minor), (dispute_exposure(milestone.currency), -amount_minor)],
    )


def book_chargeback(milestone: Milestone, *, dispute_id: str, amount_minor: int) -> None:
    """A card dispute took the money back out of escrow, to the cardholder."""
    ledger_post(
        reference=f"chargeback:{dispute_id}",
        kind=LedgerTransactionKind.CHARGEBACK,
        milestone=milestone,
        lines=[(escrow(milestone), -amount_minor), (client_funding(milestone), amount_minor)],
    )


def book_dispute_won(milestone: Milestone, *, dispute_id: str, amount_minor: int, exposed: bool) -> None:
    """Stripe returned a disputed amount: back into escrow, or off the platform's exposure."""
    back_to = dispute_exposure(milestone.currency) if exposed else escrow(milestone)
    ledger_post(
        reference=f"dispute-won:{dispute_id}",
        kind=LedgerTransactionKind.DISPUTE_WON,
        milestone=milestone,
        lines=[(back_to, amount_minor), (client_funding(milestone), -amount_minor)],
    )


# --- hourly weeks: charged into the week's escrow, paid out of it ------------------------------


def timesheet_escrow_code(timesheet: Timesheet) -> str:
    return account_code(LedgerAccountKind.ESCROW, f"timesheet-{timesheet.pk}", timesheet.currency)


def timesheet_escrow(timesheet: Timesheet) -> LedgerAccount:
    return ledger_account(LedgerAccountKind.ESCROW, f"timesheet-{timesheet.pk}", timesheet.currency)


def book_timesheet_charge(timesheet: Timesheet) -> None:
    """A week's off-session charge arrived: held in the week's escrow until the Transfer (once per week)."""
    client = client_funding_of(timesheet.engagement.client_id, timesheet.currency)
    ledger_post(
        reference=f"timesheet-charge:{timesheet.pk}",
        kind=LedgerTransactionKind.TIMESHEET_CHARGE,
        milestone=None,
        timesheet=timesheet,
        lines=[(timesheet_escrow(timesheet), timesheet.amount_minor), (client, -timesheet.amount_minor)],
    )


def book_timesheet_payout(timesheet: Timesheet) -> None:
    """The week paid out: the engineer's Transfer (the amount less the fee) and the platform's fee."""
    fee = fee_for(timesheet.amount_minor)
    engineer = engineer_payout_of(timesheet.engagement.engineer_id, timesheet.currency)
    ledger_post(
        reference=f"timesheet-payout:{timesheet.pk}",
        kind=LedgerTransactionKind.TIMESHEET_PAYOUT,
        milestone=None,
        timesheet=timesheet,
        lines=[
            (timesheet_escrow(timesheet), -timesheet.amount_minor),
            (engineer, timesheet.amount_minor - fee),
            (platform_fee(timesheet.currency), fee),
        ],
    )
