from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Case, CharField, F, IntegerField, Prefetch, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, NullIf

from accounts.models import EngineerProfile, User
from hiring_requests.engagements import engagement_visible, engagements_of_party, engagements_visible_to, visible_q
from payments.errors import TimesheetNotFound
from payments.models import (
    ESCROW_HELD,
    TIMESHEET_HELD,
    HourlyBilling,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
    LedgerTransactionKind,
    Milestone,
    PayoutAccount,
    Timesheet,
    TimesheetStatus,
)
from payments.services import ledger

if TYPE_CHECKING:
    from hiring_requests.models import Engagement


def payouts_enabled(*, engineer_id: int) -> bool:
    return PayoutAccount.objects.filter(engineer_id=engineer_id, payouts_enabled=True).exists()


def payout_account_of(*, engineer: User) -> PayoutAccount | None:
    return PayoutAccount.objects.filter(engineer=engineer).first()


def _engagements_seen_by(user: User, engagements: QuerySet[Engagement]) -> QuerySet[Engagement]:
    """Engagements with what a list of them shows, read by `user`: one query, and one for all their milestones.

    Annotated relative to `user`: `my_role` ("client", "engineer", or "staff" for staff reading an engagement
    they are not in), and the counterpart (the engineer for its client; the client for anyone else) by id and
    display name (their full name, else "Client" or "Engineer").
    """
    is_client = Q(client_id=user.pk)
    return (
        engagements.select_related("request", "billing")
        .annotate(
            my_role=Case(
                When(is_client, then=Value("client")),
                When(engineer_id=user.pk, then=Value("engineer")),
                default=Value("staff"),
                output_field=CharField(),
            ),
            counterpart_id=Case(
                When(is_client, then=F("engineer_id")), default=F("client_id"), output_field=IntegerField()
            ),
            counterpart_name=Case(
                When(is_client, then=Coalesce(NullIf(F("engineer__full_name"), Value("")), Value("Engineer"))),
                default=Coalesce(NullIf(F("client__full_name"), Value("")), Value("Client")),
                output_field=CharField(),
            ),
        )
        .prefetch_related(
            Prefetch(
                "milestones",
                queryset=Milestone.objects.only(
                    "id", "engagement_id", "title", "amount_minor", "currency", "status", "due_date", "created_at"
                ).order_by("created_at", "id"),
            )
        )
    )


def engagements_of(*, user: User, status: str | None = None) -> QuerySet[Engagement]:
    """The engagements `user` is in, as client or as engineer, newest first, each with its milestones.

    Only their own, staff too: like `conversations_of`, a "mine" list is the caller's part, and staff have none.
    """
    engagements = _engagements_seen_by(user, engagements_of_party(user))
    if status is not None:
        engagements = engagements.filter(status=status)
    # The id tail makes the key total, as the cursor pagination needs (marketplace.pagination).
    return engagements.order_by("-created_at", "-id")


def engagement_for(*, user: User, engagement_id: int) -> Engagement | None:
    """One engagement as `engagements_of` shows it, for its client and engineer, and staff (as `milestones_of`)."""
    return _engagements_seen_by(user, engagements_visible_to(user)).filter(pk=engagement_id).first()


def milestones_of(*, user: User, engagement_id: int) -> QuerySet[Milestone] | None:
    """The engagement's milestones, oldest first, or None when `user` may not see the engagement.

    The same rule as `milestone_for`: the engagement's client and engineer, and staff.
    """
    if not engagement_visible(user=user, engagement_id=engagement_id):
        return None
    return Milestone.objects.filter(engagement_id=engagement_id).order_by("created_at", "id")


def milestone_for(*, user: User, milestone_id: int) -> Milestone | None:
    """Visible to the engagement's client and engineer, and to staff."""
    return (
        Milestone.objects.select_related("engagement")
        .filter(visible_q(user, through="engagement__"), pk=milestone_id)
        .first()
    )


def ledger_problems() -> list[str]:
    """Every broken invariant of the ledger, in words. Empty means the books are right."""
    problems = []
    unbalanced = (
        LedgerEntry.objects.values("transaction__reference", "currency").annotate(total=Sum("amount")).exclude(total=0)
    )
    problems += [
        f"transaction {row['transaction__reference']} sums to {row['total']} {row['currency']}" for row in unbalanced
    ]
    for account in LedgerAccount.objects.annotate(total=Sum("entries__amount")):
        total = account.total or 0
        if total != account.balance:
            problems.append(f"account {account.code} says {account.balance} but its entries sum to {total}")
        if account.kind == LedgerAccountKind.ESCROW and total < 0:
            problems.append(f"escrow {account.code} is negative: {total}")
    for milestone in Milestone.objects.all():
        escrow = LedgerAccount.objects.filter(code=ledger.escrow_code(milestone)).first()
        held = escrow.balance if escrow else 0
        expected = milestone.amount_minor if milestone.status in ESCROW_HELD else 0
        if held != expected:
            problems.append(f"milestone {milestone.pk} is {milestone.status} but escrow holds {held}, not {expected}")
        payouts = LedgerTransaction.objects.filter(
            milestone=milestone, kind__in=[LedgerTransactionKind.RELEASE, LedgerTransactionKind.SETTLE]
        ).count()
        if payouts > 1:
            problems.append(f"milestone {milestone.pk} was paid out {payouts} times")
        paid = (
            LedgerEntry.objects.filter(
                transaction__milestone=milestone,
                account__kind__in=[LedgerAccountKind.ENGINEER_PAYOUT, LedgerAccountKind.PLATFORM_FEE],
            ).aggregate(total=Sum("amount"))["total"]
            or 0
        )
        if paid > milestone.amount_minor:
            problems.append(f"milestone {milestone.pk} paid out {paid}, more than its {milestone.amount_minor}")
    return problems + _timesheet_problems()


def _timesheet_problems() -> list[str]:
    """Each hourly week: escrow holds its amount exactly while charged and unpaid; charged once, paid out once."""
    problems = []
    for timesheet in Timesheet.objects.exclude(payment_intent_id="", status__in=["open", "void", "carried_over"]):
        escrow = LedgerAccount.objects.filter(code=ledger.timesheet_escrow_code(timesheet)).first()
        held = escrow.balance if escrow else 0
        expected = timesheet.amount_minor if timesheet.status in TIMESHEET_HELD else 0
        if held != expected:
            problems.append(f"timesheet {timesheet.pk} is {timesheet.status} but escrow holds {held}, not {expected}")
        kinds = list(LedgerTransaction.objects.filter(timesheet=timesheet).values_list("kind", flat=True))
        for kind in (LedgerTransactionKind.TIMESHEET_CHARGE, LedgerTransactionKind.TIMESHEET_PAYOUT):
            if kinds.count(kind) > 1:
                problems.append(f"timesheet {timesheet.pk} has {kinds.count(kind)} {kind} bookings")
        if timesheet.status == "paid" and kinds.count(LedgerTransactionKind.TIMESHEET_PAYOUT) != 1:
            problems.append(f"timesheet {timesheet.pk} is paid but its payout is not booked")
    return problems


def billing_for(*, user: User, engagement_id: int) -> HourlyBilling | None:
    """An hourly engagement's billing, for its client and engineer and staff; None otherwise."""
    return (
        HourlyBilling.objects.select_related("engagement")
        .filter(visible_q(user, through="engagement__"), engagement_id=engagement_id)
        .first()
    )


def timesheets_of(*, user: User, engagement_id: int) -> QuerySet[Timesheet] | None:
    """The engagement's weeks, newest first, or None when `user` may not see the engagement."""
    if not engagement_visible(user=user, engagement_id=engagement_id):
        return None
    # The id tail makes the key total, as the cursor pagination needs (marketplace.pagination).
    return Timesheet.objects.filter(engagement_id=engagement_id).order_by("-week_start", "-id")


def timesheet_for(*, user: User, timesheet_id: int) -> Timesheet:
    """A week its engagement's client and engineer (and staff) may see. Raises TimesheetNotFound."""
    found = (
        Timesheet.objects.select_related("engagement")
        .filter(visible_q(user, through="engagement__"), pk=timesheet_id)
        .first()
    )
    if found is None:
        raise TimesheetNotFound()
    return found


def engineer_zone(engineer_id: int) -> str:
    """The engineer's IANA time zone (UTC when they have not set one)."""
    zone = EngineerProfile.objects.filter(user_id=engineer_id).values_list("time_zone", flat=True).first()
    return zone or "UTC"


def timesheets_awaiting_review(*, now: datetime, within: timedelta) -> QuerySet[Timesheet]:
    """Submitted weeks whose review window closes within `within` of `now` (silence approves them then)."""
    return (
        Timesheet.objects.select_related("engagement")
        .filter(status=TimesheetStatus.SUBMITTED, review_deadline__gt=now, review_deadline__lte=now + within)
        .order_by("review_deadline", "pk")
    )
