"""Hourly engagements: a card saved at hire, weekly timesheets, the client's review.

The rules, with their sources (docs/payments.md, "Hourly engagements", has the timeline):
- Weeks run Monday 00:00 to Sunday 24:00 UTC, as on Upwork's hourly contracts. An
  entry belongs to the week its `started_at` falls in, and may not run into the next.
- The engineer may log and edit a week until TIMESHEET_EDIT_GRACE_HOURS after it
  ends (Upwork: Monday 12:00 UTC); then `timesheets_close` sends it to the client.
- Nothing in the future, nothing before the engagement started (the moment its
  first card was saved), nothing over the week's cap (`hours_per_week`, or the
  client's change from the Monday after they made it).
- The amount is computed once, on the week's total: minutes x hourly rate / 60,
  rounded half up to a whole minor unit (`amount_for`).
- The client approves or disputes entries within TIMESHEET_REVIEW_DAYS; silence
  approves. Disputed hours go to staff, who settle them (`timesheet_settle`).

Charging and paying out are in `payments.services.timesheet_billing`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from conversations.services import system_message_post_on_commit
from hiring_requests.engagements import EngagementStatus, Side, engagement_of, may_see
from marketplace.db import atomic_phase
from marketplace.errors import EngagementNotFound, Forbidden
from marketplace.money import format_money
from marketplace.notifications import notify_user
from payments import gateway
from payments.errors import (
    BillingNotActive,
    InvalidTimeEntry,
    NotHourly,
    TimeEntryNotFound,
    TimesheetNotFound,
    TimesheetStateConflict,
    WeeklyCapExceeded,
)
from payments.limits import MINIMUM_MINOR
from payments.models import (
    BILLING_MOVES,
    TIMESHEET_MOVES,
    TIMESHEET_STEP_STATES,
    BillingStatus,
    Customer,
    HourlyBilling,
    TimeEntry,
    Timesheet,
    TimesheetEvent,
    TimesheetStatus,
    WeeklyCap,
)
from payments.services.transitions import alert_staff, blocking
from reviews.services import review_round_open

if TYPE_CHECKING:
    from hiring_requests.models import Engagement

logger = logging.getLogger(__name__)

T = TimesheetStatus
WEEK = timedelta(days=7)
# Timesheet states the chat of the engagement hears about.
_TOLD_IN_CHAT = (T.SUBMITTED, T.DISPUTED, T.CHARGE_FAILED, T.PAID)


# --- weeks and money ---------------------------------------------------------------------


def week_start_of(moment: datetime) -> date:
    """The Monday (a UTC date) of the week holding the aware datetime `moment`."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def week_bounds(week_start: date) -> tuple[datetime, datetime]:
    """The week's start (Monday 00:00 UTC, included) and end (the next Monday 00:00 UTC, excluded)."""
    start = datetime.combine(week_start, time(0), tzinfo=UTC)
    return start, start + WEEK


def editable_until(week_start: date) -> datetime:
    """The moment a week stops taking entries and edits: its end plus TIMESHEET_EDIT_GRACE_HOURS (UTC)."""
    return week_bounds(week_start)[1] + timedelta(hours=settings.TIMESHEET_EDIT_GRACE_HOURS)


def amount_for(minutes: int, rate_minor: int) -> int:
    """What `minutes` of work cost at `rate_minor` an hour, in minor units, rounded half up once.

    7 h 20 min at 40.00 an hour is 440 x 4,000 / 60 = 29,333.33, charged as 29,333
    cents; 1 min at 0.30 is 0.5 cents, charged as 1. The week's total is rounded, never
    each entry, so a week costs the same however its time was split.
    """
    return (2 * minutes * rate_minor + 60) // 120


def weekly_cap_hours(engagement: Engagement, week_start: date) -> int:
    """The hours the engagement may bill in the week from `week_start`: the client's latest change, or the hire's."""
    cap = (
        WeeklyCap.objects.filter(engagement=engagement, applies_from__lte=week_start)
        .order_by("-applies_from")
        .values_list("hours", flat=True)
        .first()
    )
    return cap if cap is not None else engagement.hours_per_week


# --- moving a timesheet ------------------------------------------------------------------


def move(timesheet: Timesheet, to: TimesheetStatus, *, actor: User | None, fields: list[str], note: str = "") -> None:
    """Save `timesheet` in state `to` with `fields` if TIMESHEET_MOVES allows it; record and announce the move.

    The caller holds the row lock (`lock_timesheet`). Entering a Stripe step stamps
    `step_claimed_at`; leaving one clears it. Raises TimesheetStateConflict.
    """
    if to not in TIMESHEET_MOVES[timesheet.status]:
        raise TimesheetStateConflict(f"A {timesheet.status} timesheet cannot become {to}.")
    from_status = timesheet.status
    timesheet.status = to
    timesheet.step_claimed_at = timezone.now() if to in TIMESHEET_STEP_STATES else None
    timesheet.step_failures = 0
    timesheet.save(update_fields=["status", "step_claimed_at", "step_failures", *fields])
    TimesheetEvent.objects.create(timesheet=timesheet, from_status=from_status, to_status=to, actor=actor, note=note)
    if to == T.PAID:
        # The engineer is paid for the week: both sides may now review each other.
        review_round_open(engagement=timesheet.engagement, step=f"timesheet-{timesheet.pk}")
    _announce(timesheet)
    logger.info("timesheet.moved", extra={"timesheet_id": timesheet.pk, "from": from_status, "to": to})


def _announce(timesheet: Timesheet) -> None:
    engagement = timesheet.engagement
    payload = {
        "timesheet_id": timesheet.pk,
        "engagement_id": engagement.pk,
        "week_start": timesheet.week_start.isoformat(),
        "status": timesheet.status,
        "minutes": timesheet.minutes,
        "amount_minor": timesheet.amount_minor,
        "currency": timesheet.currency,
    }
    if timesheet.status == T.CHARGE_FAILED:
        payload |= {"failure_code": timesheet.failure_code, "fix": fix_links(timesheet)}
    for user_id in (engagement.client_id, engagement.engineer_id):
        notify_user(user_id=user_id, event="timesheet.changed", payload=payload)
    if timesheet.status in _TOLD_IN_CHAT:
        chat_post(engagement, {"event": f"timesheet.{timesheet.status}", **payload})


def fix_links(timesheet: Timesheet) -> dict[str, str]:
    """Where the client fixes a failed charge: save another card, or pay now (confirming the payment if asked)."""
    return {
        "replace_card": f"/api/payments/engagements/{timesheet.engagement_id}/payment-method",
        "pay_now": f"/api/payments/timesheets/{timesheet.pk}/pay",
    }


def chat_post(engagement: Engagement, payload: dict[str, object]) -> None:
    """A system message in the engagement's conversation, after commit (a failure there cannot undo the step)."""
    system_message_post_on_commit(request_id=engagement.request_id, engineer_id=engagement.engineer_id, payload=payload)


def lock_timesheet(timesheet_id: int, user: User | None) -> Timesheet:
    """The timesheet with its engagement, row locked; TimesheetNotFound unless `user` (None: the system) may see it."""
    found = (
        Timesheet.objects.select_for_update(of=("self",)).select_related("engagement").filter(pk=timesheet_id).first()
    )
    if found is None or not may_see(user, found.engagement):
        raise TimesheetNotFound()
    return found


def lock_billing(engagement_id: int) -> HourlyBilling:
    return (
        HourlyBilling.objects.select_for_update(of=("self",))
        .select_related("engagement")
        .get(engagement_id=engagement_id)
    )


def _own_hourly(user: User, engagement_id: int, side: Side) -> Engagement:
    """The active hourly engagement where `user` is the `side`. EngagementNotFound, NotHourly."""
    engagement = engagement_of(user=user, engagement_id=engagement_id, side=side)
    if engagement is None or engagement.status != EngagementStatus.ACTIVE:
        raise EngagementNotFound()
    if engagement.rate_kind != "hourly":
        raise NotHourly()
    return engagement


# --- billing: opened at hire, activated by a saved card ----------------------------------


def billing_open(engagement: Engagement) -> HourlyBilling:
    """At an hourly hire (in its transaction): the engagement waits for the client's card."""
    return HourlyBilling.objects.create(engagement=engagement)


def billing_move(billing: HourlyBilling, to: BillingStatus, *, fields: list[str]) -> None:
    """Save `billing` in state `to` with `fields` if BILLING_MOVES allows it. Raises BillingNotActive.

    The caller holds the row lock (`lock_billing`) and tells both sides (`billing.changed`).
    """
    if to not in BILLING_MOVES[billing.status]:
        raise BillingNotActive(f"An engagement's billing that is {billing.status} cannot become {to}.")
    from_status = billing.status
    billing.status = to
    billing.save(update_fields=["status", "updated_at", *fields])
    logger.info("billing.moved", extra={"engagement_id": billing.engagement_id, "from": from_status, "to": to})


@dataclass(frozen=True)
class CardSetup:
    """What Stripe.js needs to save a card: the SetupIntent and its client secret."""

    engagement_id: int
    setup_intent_id: str
    client_secret: str
    billing_status: str


def _setup_claim(*, client: User, engagement_id: int) -> tuple[int, str, str, str]:
    engagement = _own_hourly(client, engagement_id, "client")
    billing = lock_billing(engagement.pk)
    billing.setup_attempt += 1
    billing.save(update_fields=["setup_attempt", "updated_at"])
    customer = Customer.objects.filter(client=client).values_list("stripe_customer_id", flat=True).first()
    return billing.setup_attempt, customer or "", client.email, billing.status


def _customer_record(*, client_id: int, stripe_customer_id: str) -> str:
    customer, _ = Customer.objects.get_or_create(
        client_id=client_id, defaults={"stripe_customer_id": stripe_customer_id}
    )
    return customer.stripe_customer_id


def _setup_record(*, engagement_id: int, attempt: int, setup_intent_id: str, client_secret: str) -> None:
    billing = lock_billing(engagement_id)
    if billing.setup_attempt == attempt:  # a later attempt's SetupIntent is the one to show
        billing.setup_intent_id, billing.setup_client_secret = setup_intent_id, client_secret
        billing.save(update_fields=["setup_intent_id", "setup_client_secret", "updated_at"])


async def apayment_method_setup(*, client: User, engagement_id: int) -> CardSetup:
    """Start saving a card for off-session charges on an hourly engagement (at hire, or to replace the card).

    Makes the client's Stripe Customer once (key `customer-client-<id>`) and a new
    SetupIntent with `usage="off_session"` (key `engagement-<id>-setup-<attempt>`).
    The engagement starts, or resumes, when Stripe sends `setup_intent.succeeded`.
    No money moves, so no step is claimed: an abandoned SetupIntent is harmless.
    Raises EngagementNotFound, NotHourly, PaymentsUnavailable, PaymentRefused.
    https://docs.stripe.com/payments/save-and-reuse
    """
    attempt, customer, email, status = await atomic_phase(_setup_claim)(client=client, engagement_id=engagement_id)
    if not customer:
        made = await gateway.create_customer(
            email=email, metadata={"client_id": str(client.pk)}, key=f"customer-client-{client.pk}"
        )
        customer = await atomic_phase(_customer_record)(client_id=client.pk, stripe_customer_id=made.id)
    setup = await gateway.create_setup_intent(
        customer=customer,
        metadata={"engagement_id": str(engagement_id)},
        key=f"engagement-{engagement_id}-setup-{attempt}",
    )
    await atomic_phase(_setup_record)(
        engagement_id=engagement_id, attempt=attempt, setup_intent_id=setup.id, client_secret=setup.client_secret or ""
    )
    return CardSetup(engagement_id, setup.id, setup.client_secret or "", status)


payment_method_setup = blocking(apayment_method_setup)


def _card_saved(*, engagement_id: int, payment_method_id: str, brand: str, last4: str) -> tuple[HourlyBilling, bool]:
    """Record the saved card and start or resume the engagement. Returns (billing, resumed_from_pause)."""
    billing = lock_billing(engagement_id)
    engagement = billing.engagement
    was = billing.status
    billing.payment_method_id, billing.card_brand, billing.card_last4 = payment_method_id, brand, last4
    billing.started_at = billing.started_at or timezone.now()
    billing.paused_at = None
    fields = ["payment_method_id", "card_brand", "card_last4", "started_at", "paused_at"]
    if was == BillingStatus.ACTIVE:
        billing.save(update_fields=[*fields, "updated_at"])  # another card for a running engagement: no move
    else:
        billing_move(billing, BillingStatus.ACTIVE, fields=fields)
        payload = {"engagement_id": engagement.pk, "status": billing.status, "card_last4": last4}
        for user_id in (engagement.client_id, engagement.engineer_id):
            notify_user(user_id=user_id, event="billing.changed", payload=payload)
        chat_post(engagement, {"event": "billing.active", **payload})
    # Failed weeks are charged again at once with the new card.
    Timesheet.objects.filter(engagement=engagement, status=T.CHARGE_FAILED).update(next_charge_at=timezone.now())
    return billing, was == BillingStatus.PAUSED


async def asetup_intent_sync(*, setup_intent_id: str) -> HourlyBilling | None:
    """Stripe says a SetupIntent succeeded: read it again and save its card on the engagement it was made for.

    Idempotent (a duplicate event saves the same card again). Returns None for a
    SetupIntent that is not ours or has not succeeded.
    """
    setup = await gateway.retrieve_setup_intent(setup_intent_id)
    metadata = setup.metadata.to_dict() if setup.metadata is not None else {}
    engagement_id = metadata.get("engagement_id")
    if setup.status != "succeeded" or not engagement_id or not setup.payment_method:
        return None
    method_id = setup.payment_method if isinstance(setup.payment_method, str) else setup.payment_method.id
    method = await gateway.retrieve_payment_method(method_id)
    card = method.card
    billing, _ = await atomic_phase(_card_saved)(
        engagement_id=int(engagement_id),
        payment_method_id=method_id,
        brand=str(card.brand) if card else "",
        last4=str(card.last4) if card else "",
    )
    return billing


setup_intent_sync = blocking(asetup_intent_sync)


def weekly_cap_set(*, client: User, engagement_id: int, hours: int, now: datetime | None = None) -> WeeklyCap:
    """Raise or lower the weekly hours from next Monday (UTC); the current week keeps its cap.

    Raises EngagementNotFound, NotHourly, InvalidTimeEntry (hours outside 1-168).
    """
    if not 1 <= hours <= 168:
        raise InvalidTimeEntry("hours: between 1 and 168 a week", field="hours")
    engagement = _own_hourly(client, engagement_id, "client")
    applies_from = week_start_of(now or timezone.now()) + WEEK
    with transaction.atomic():
        cap, _ = WeeklyCap.objects.update_or_create(
            engagement=engagement, applies_from=applies_from, defaults={"hours": hours, "set_by": client}
        )
        payload = {"engagement_id": engagement.pk, "hours": hours, "applies_from": applies_from.isoformat()}
        notify_user(user_id=engagement.engineer_id, event="billing.cap_changed", payload=payload)
    return cap


# --- time entries ----------------------------------------------------------------------------


def _check_entry(billing: HourlyBilling, started_at: datetime, minutes: int, note: str, now: datetime) -> date:
    """The entry's week (a Monday), or raise InvalidTimeEntry / BillingNotActive."""
    if billing.status != BillingStatus.ACTIVE:
        why = (
            "the client has not saved a payment method yet"
            if billing.status == BillingStatus.AWAITING_PAYMENT_METHOD
            else "a charge failed; do not log more hours until the client has paid"
        )
        raise BillingNotActive(f"Time cannot be logged now: {why}.")
    if timezone.is_naive(started_at):
        raise InvalidTimeEntry(
            "started_at: give a time zone offset, such as 2026-12-01T09:00:00+01:00", field="started_at"
        )
    if not 1 <= minutes <= 1440:
        raise InvalidTimeEntry("minutes: between 1 and 1440", field="minutes")
    if not note.strip():
        raise InvalidTimeEntry("note: say what was done", field="note")
    ends_at = started_at + timedelta(minutes=minutes)
    if ends_at > now:
        raise InvalidTimeEntry("started_at: time in the future cannot be logged", field="started_at")
    assert billing.started_at is not None  # noqa: S101 - an active billing has started
    if started_at < billing.started_at:
        raise InvalidTimeEntry(
            f"started_at: the engagement started at {billing.started_at:%Y-%m-%d %H:%M} UTC", field="started_at"
        )
    week = week_start_of(started_at)
    if ends_at > week_bounds(week)[1]:
        raise InvalidTimeEntry(
            "minutes: an entry ends by Monday 00:00 UTC, where weeks change; log the rest as a new entry",
            field="minutes",
        )
    if now >= editable_until(week):
        raise InvalidTimeEntry(f"started_at: the week of {week} is closed", field="started_at")
    return week


def _check_week(timesheet: Timesheet, entry: TimeEntry, *, excluding: int | None) -> None:
    """Refuse an entry that overlaps another of the week, or takes the week over its cap (the timesheet is locked)."""
    others = TimeEntry.objects.filter(timesheet=timesheet)
    if excluding is not None:
        others = others.exclude(pk=excluding)
    ends_at = entry.started_at + timedelta(minutes=entry.minutes)
    for other in others.filter(started_at__lt=ends_at):
        if other.started_at + timedelta(minutes=other.minutes) > entry.started_at:
            raise InvalidTimeEntry(
                f"started_at: overlaps the entry of {other.started_at:%Y-%m-%d %H:%M} UTC", field="started_at"
            )
    logged = others.aggregate(total=Sum("minutes"))["total"] or 0
    cap = weekly_cap_hours(timesheet.engagement, timesheet.week_start)
    if logged + entry.minutes > cap * 60:
        raise WeeklyCapExceeded(
            f"minutes: the week of {timesheet.week_start} is capped at {cap} h; {_hours(logged)} are logged, so at "
            f"most {cap * 60 - logged} more minutes fit"
        )


def _hours(minutes: int) -> str:
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _open_timesheet(engagement: Engagement, week: date) -> Timesheet:
    """The week's timesheet, made if new, row locked: entries of one week are checked one at a time."""
    Timesheet.objects.get_or_create(
        engagement=engagement,
        week_start=week,
        defaults={"rate_minor": engagement.rate_minor, "currency": engagement.currency},
    )
    timesheet = lock_timesheet(Timesheet.objects.get(engagement=engagement, week_start=week).pk, None)
    if timesheet.status != T.OPEN:
        raise InvalidTimeEntry(f"started_at: the week of {week} is closed", field="started_at")
    return timesheet


def _total(timesheet: Timesheet) -> None:
    timesheet.minutes = timesheet.entries.aggregate(total=Sum("minutes"))["total"] or 0
    timesheet.save(update_fields=["minutes"])


def time_entry_log(
    *, engineer: User, engagement_id: int, started_at: datetime, minutes: int, note: str, now: datetime | None = None
) -> TimeEntry:
    """Log `minutes` of work from `started_at` (aware) on an hourly engagement; the rules are in the module docstring.

    Raises EngagementNotFound, NotHourly, BillingNotActive (409), InvalidTimeEntry,
    WeeklyCapExceeded (422).
    """
    now = now or timezone.now()
    engagement = _own_hourly(engineer, engagement_id, "engineer")
    with transaction.atomic():
        billing = HourlyBilling.objects.get(engagement=engagement)
        week = _check_entry(billing, started_at, minutes, note, now)
        timesheet = _open_timesheet(engagement, week)
        entry = TimeEntry(timesheet=timesheet, started_at=started_at, minutes=minutes, note=note.strip())
        _check_week(timesheet, entry, excluding=None)
        entry.save()
        _total(timesheet)
    return entry


def _own_entry(engineer: User, entry_id: int) -> TimeEntry:
    entry = TimeEntry.objects.select_related("timesheet__engagement").filter(pk=entry_id).first()
    if entry is None or entry.timesheet.engagement.engineer_id != engineer.pk:
        raise TimeEntryNotFound()
    return entry


def time_entry_edit(
    *,
    engineer: User,
    entry_id: int,
    started_at: datetime | None = None,
    minutes: int | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> TimeEntry:
    """Change an entry while its week is open; it stays in its week. Raises as `time_entry_log`, TimeEntryNotFound."""
    now = now or timezone.now()
    entry = _own_entry(engineer, entry_id)
    with transaction.atomic():
        timesheet = lock_timesheet(entry.timesheet_id, None)
        if timesheet.status != T.OPEN:
            raise InvalidTimeEntry(f"started_at: the week of {timesheet.week_start} is closed", field="started_at")
        # Read again under the lock: a DELETE that held it first has removed the entry.
        current = TimeEntry.objects.filter(pk=entry_id).first()
        if current is None:
            raise TimeEntryNotFound()
        entry = current
        entry.started_at = started_at or entry.started_at
        entry.minutes = entry.minutes if minutes is None else minutes
        entry.note = entry.note if note is None else note.strip()
        billing = HourlyBilling.objects.get(engagement_id=timesheet.engagement_id)
        if _check_entry(billing, entry.started_at, entry.minutes, entry.note, now) != timesheet.week_start:
            raise InvalidTimeEntry(
                f"started_at: an entry stays in its week ({timesheet.week_start}); delete it and log it again",
                field="started_at",
            )
        _check_week(timesheet, entry, excluding=entry.pk)
        entry.save()
        _total(timesheet)
    return entry


def time_entry_delete(*, engineer: User, entry_id: int, now: datetime | None = None) -> None:
    """Remove an entry while its week is open. Raises TimeEntryNotFound, InvalidTimeEntry."""
    now = now or timezone.now()
    entry = _own_entry(engineer, entry_id)
    with transaction.atomic():
        timesheet = lock_timesheet(entry.timesheet_id, None)
        if timesheet.status != T.OPEN or now >= editable_until(timesheet.week_start):
            raise InvalidTimeEntry(f"the week of {timesheet.week_start} is closed", field="")
        TimeEntry.objects.filter(pk=entry_id).delete()
        _total(timesheet)


# --- the week closes: to the client for review -------------------------------------------


def _close_one(timesheet_id: int, now: datetime) -> str:
    timesheet = lock_timesheet(timesheet_id, None)
    if timesheet.status != T.OPEN:
        return "skipped"
    timesheet.minutes = (timesheet.entries.aggregate(total=Sum("minutes"))["total"] or 0) + timesheet.carried_minutes
    timesheet.amount_minor = amount_for(timesheet.minutes, timesheet.rate_minor)
    if timesheet.minutes == 0:
        move(timesheet, T.VOID, actor=None, fields=["minutes", "amount_minor"], note="no time logged")
        return "void"
    if timesheet.amount_minor < MINIMUM_MINOR.get(timesheet.currency, 50):
        # Stripe cannot charge so little: the minutes are billed with the week being logged now.
        current = week_start_of(now)
        later, _ = Timesheet.objects.get_or_create(
            engagement=timesheet.engagement,
            week_start=current,
            defaults={"rate_minor": timesheet.rate_minor, "currency": timesheet.currency},
        )
        later = lock_timesheet(later.pk, None)
        later.carried_minutes += timesheet.minutes
        later.save(update_fields=["carried_minutes"])
        move(
            timesheet,
            T.CARRIED_OVER,
            actor=None,
            fields=["minutes", "amount_minor"],
            note=f"below Stripe's minimum charge: {timesheet.minutes} min billed with the week of {current}",
        )
        return "carried_over"
    timesheet.submitted_at = now
    timesheet.review_deadline = now + timedelta(days=settings.TIMESHEET_REVIEW_DAYS)
    move(timesheet, T.SUBMITTED, actor=None, fields=["minutes", "amount_minor", "submitted_at", "review_deadline"])
    return "submitted"


def timesheets_close(*, now: datetime | None = None) -> dict[str, int]:
    """The beat job: every open week past its edit grace goes to the client (or is void, or carried over).

    Returns counts by outcome. Each week closes in its own short transaction, once.
    """
    now = now or timezone.now()
    last_closable = week_start_of(now - timedelta(hours=settings.TIMESHEET_EDIT_GRACE_HOURS)) - WEEK
    counts = {"submitted": 0, "void": 0, "carried_over": 0, "skipped": 0}
    due = Timesheet.objects.filter(status=T.OPEN, week_start__lte=last_closable).order_by("week_start", "pk")
    for timesheet_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            counts[_close_one(timesheet_id, now)] += 1
    return counts


# --- review: dispute, and staff settling --------------------------------------------------


def timesheet_dispute(*, client: User, timesheet_id: int, entries: list[tuple[int, str]]) -> Timesheet:
    """Dispute some entries of a submitted week, each with a reason; the week waits for staff.

    `entries`: (entry id, reason) pairs, at least one, each entry once. Raises TimesheetNotFound,
    Forbidden, TimesheetStateConflict, InvalidTimeEntry.
    """
    if not entries or any(not reason.strip() for _, reason in entries):
        raise InvalidTimeEntry("entries: name at least one entry, each with a reason", field="entries")
    if len(dict(entries)) != len(entries):
        # Two reasons for one entry: which one the client meant cannot be known.
        raise InvalidTimeEntry("entries: name each entry once", field="entries")
    with transaction.atomic():
        timesheet = lock_timesheet(timesheet_id, client)
        if client.pk != timesheet.engagement.client_id:
            raise Forbidden("Only the engagement's client reviews its timesheets.")
        if timesheet.status != T.SUBMITTED:
            raise TimesheetStateConflict(f"A {timesheet.status} timesheet cannot be disputed.")
        reasons = dict(entries)
        found = list(TimeEntry.objects.filter(timesheet=timesheet, pk__in=reasons))
        if len(found) != len(reasons):
            raise InvalidTimeEntry("entries: every entry must be one of this week's", field="entries")
        for entry in found:
            entry.disputed, entry.dispute_reason = True, reasons[entry.pk].strip()
        TimeEntry.objects.bulk_update(found, ["disputed", "dispute_reason"])
        timesheet.disputed_minutes = sum(entry.minutes for entry in found)
        timesheet.disputed_at = timezone.now()
        timesheet.dispute_reason = "; ".join(f"{entry.started_at:%a %d %b}: {entry.dispute_reason}" for entry in found)
        move(
            timesheet,
            T.DISPUTED,
            actor=client,
            fields=["disputed_minutes", "disputed_at", "dispute_reason"],
            note=timesheet.dispute_reason,
        )
        alert_staff(
            event="timesheet.disputed",
            payload={
                "timesheet_id": timesheet.pk,
                "minutes": timesheet.disputed_minutes,
                "reason": timesheet.dispute_reason,
            },
        )
    return timesheet


def disputed_amount(timesheet: Timesheet) -> int:
    """The part of the week's amount that is disputed: the whole less the undisputed minutes' amount (minor units)."""
    return timesheet.amount_minor - amount_for(timesheet.minutes - timesheet.disputed_minutes, timesheet.rate_minor)


def _settle(*, staff: User, timesheet_id: int, engineer_share_minor: int) -> Timesheet:
    timesheet = lock_timesheet(timesheet_id, staff)
    if timesheet.status != T.DISPUTED:
        raise TimesheetStateConflict("Only a disputed timesheet is settled.")
    at_stake = disputed_amount(timesheet)
    if not 0 <= engineer_share_minor <= at_stake:
        raise InvalidTimeEntry(f"engineer_share_minor: between 0 and {at_stake}", field="engineer_share_minor")
    amount = timesheet.amount_minor - at_stake + engineer_share_minor
    minimum = MINIMUM_MINOR.get(timesheet.currency, 50)
    if 0 < amount < minimum:
        raise InvalidTimeEntry(
            f"engineer_share_minor: the week would come to {format_money(amount, timesheet.currency)}, below Stripe's "
            f"minimum charge; settle at nothing or at least {minimum - amount + engineer_share_minor}",
            field="engineer_share_minor",
        )
    note = (
        f"settled: {format_money(engineer_share_minor, timesheet.currency)} of the disputed "
        f"{format_money(at_stake, timesheet.currency)} billed"
    )
    timesheet.settle_share_minor, timesheet.amount_minor = engineer_share_minor, amount
    if amount == 0:
        move(timesheet, T.VOID, actor=staff, fields=["settle_share_minor", "amount_minor"], note=note)
    else:
        timesheet.approved_at = timezone.now()
        move(
            timesheet, T.APPROVED, actor=staff, fields=["settle_share_minor", "amount_minor", "approved_at"], note=note
        )
    return timesheet


def timesheet_settle(*, staff: User, timesheet_id: int, engineer_share_minor: int) -> Timesheet:
    """Staff settle a disputed week: `engineer_share_minor` of the disputed amount is billed with the rest.

    The week is then charged as an approved one (by the caller or the sweep); a week
    settled at nothing is void. Raises Forbidden, TimesheetNotFound,
    TimesheetStateConflict, InvalidTimeEntry (a share out of range, or a total below
    Stripe's minimum charge).
    """
    if not staff.is_staff:
        raise Forbidden("Only staff settle disputes.")
    with transaction.atomic():
        return _settle(staff=staff, timesheet_id=timesheet_id, engineer_share_minor=engineer_share_minor)
