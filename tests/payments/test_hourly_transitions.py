"""The tables of hourly engagements are the rule: TIMESHEET_MOVES for a week, BILLING_MOVES for its billing.

Every pair of states is tried against `move` and `billing_move`: a move the table lists
is saved, any other is refused with the app's conflict error and saves nothing. Then each
step that changes a state is run (the short transactions around each Stripe call, so
nothing reaches Stripe) and the moves it made are read back from the database: each is
in its table, and between them the steps make every move the tables list.
"""

import itertools
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from hiring_requests.models import Engagement
from payments.errors import BillingNotActive, TimesheetStateConflict
from payments.models import (
    BILLING_MOVES,
    TIMESHEET_MOVES,
    BillingStatus,
    HourlyBilling,
    PayoutAccount,
    Timesheet,
    TimesheetEvent,
    TimesheetStatus,
)
from payments.services import hourly, ledger, timesheet_billing
from tests.factories import CustomerFactory, StaffFactory, TimeEntryFactory, TimesheetFactory
from tests.payments.helpers import hourly_engagement

pytestmark = pytest.mark.django_db

T, B = TimesheetStatus, BillingStatus
TIMESHEET_PAIRS = list(itertools.product(T.values, T.values))
BILLING_PAIRS = list(itertools.product(B.values, B.values))
Pairs = set[tuple[str, str]]


def pairs_of(table: dict[str, frozenset[str]]) -> Pairs:
    return {(state, to) for state, allowed in table.items() for to in allowed}


# --- the tables --------------------------------------------------------------------------


@pytest.mark.parametrize(("table", "choices"), [(TIMESHEET_MOVES, T), (BILLING_MOVES, B)], ids=["timesheet", "billing"])
def test_each_table_names_every_state_and_only_its_states(table, choices):
    assert set(table) == set(choices.values)
    assert set().union(*table.values()) <= set(choices.values)
    assert all(state not in allowed for state, allowed in table.items())  # a move changes the state


def test_a_week_ends_paid_void_or_carried_over_and_billing_never_ends():
    assert [s for s in T.values if not TIMESHEET_MOVES[s]] == [T.PAID, T.VOID, T.CARRIED_OVER]
    assert all(BILLING_MOVES.values())
    assert B.AWAITING_PAYMENT_METHOD not in set().union(*BILLING_MOVES.values())  # a saved card is never unsaved


# --- every pair, through move and billing_move ---------------------------------------------------

LAST_WEEK = date(2026, 11, 9)  # a Monday


def _week(made: Engagement, status: str, *, minutes: int = 120, week_start: date = LAST_WEEK, **fields) -> Timesheet:
    timesheet = TimesheetFactory.create(
        engagement=made, week_start=week_start, status=status, minutes=minutes, **fields
    )
    if minutes:
        TimeEntryFactory.create(timesheet=timesheet, minutes=minutes)
    return timesheet


@pytest.mark.parametrize(("from_status", "to_status"), TIMESHEET_PAIRS, ids=[f"{a}->{b}" for a, b in TIMESHEET_PAIRS])
def test_the_timesheet_table_decides_every_move(rubric, from_status, to_status):
    timesheet = _week(hourly_engagement(onboarded=False), from_status)
    before = Timesheet.objects.values().get(pk=timesheet.pk)
    timesheet.minutes = 9_999  # changed in memory only: not among the fields the move saves
    allowed = to_status in TIMESHEET_MOVES[from_status]

    if allowed:
        hourly.move(timesheet, T(to_status), actor=None, fields=[])
    else:
        with pytest.raises(TimesheetStateConflict, match=f"A {from_status} timesheet cannot become {to_status}"):
            hourly.move(timesheet, T(to_status), actor=None, fields=[])

    stored = Timesheet.objects.values().get(pk=timesheet.pk)
    assert (stored["status"], stored["minutes"]) == (to_status if allowed else from_status, before["minutes"])
    if not allowed:
        assert stored == before
    assert TimesheetEvent.objects.filter(timesheet=timesheet).count() == int(allowed)


@pytest.mark.parametrize(("from_status", "to_status"), BILLING_PAIRS, ids=[f"{a}->{b}" for a, b in BILLING_PAIRS])
def test_the_billing_table_decides_every_move(rubric, from_status, to_status):
    made = hourly_engagement(onboarded=False)
    HourlyBilling.objects.filter(engagement=made).update(status=from_status)
    billing = hourly.lock_billing(made.pk)
    before = HourlyBilling.objects.values().get(pk=billing.pk)
    billing.card_last4 = "0000"  # changed in memory only
    allowed = to_status in BILLING_MOVES[from_status]

    if allowed:
        hourly.billing_move(billing, B(to_status), fields=[])
    else:
        with pytest.raises(BillingNotActive, match=f"billing that is {from_status} cannot become {to_status}"):
            hourly.billing_move(billing, B(to_status), fields=[])

    stored = HourlyBilling.objects.values().get(pk=billing.pk)
    assert (stored["status"], stored["card_last4"]) == (to_status if allowed else from_status, before["card_last4"])
    if not allowed:
        assert stored == before


# --- every move the steps make ---------------------------------------------------------------


def _states() -> dict[str, dict[int, str]]:
    return {
        "timesheet": dict(Timesheet.objects.values_list("pk", "status")),
        "billing": dict(HourlyBilling.objects.values_list("pk", "status")),
    }


def moves_made(step: Callable[[], object]) -> dict[str, Pairs]:
    """Run `step` and read back, for each machine, the (from, to) moves of the rows that existed before it."""
    before = _states()
    step()
    after = _states()
    return {
        name: {(before[name][pk], status) for pk, status in rows.items() if before[name].get(pk, status) != status}
        for name, rows in after.items()
    }


def _engagement(billing: str = B.ACTIVE, *, rate_minor: int = 4_000) -> Engagement:
    """An hourly engagement whose client has a Stripe Customer and a saved card, and whose engineer can be paid."""
    made = hourly_engagement(onboarded=False, rate_minor=rate_minor)
    HourlyBilling.objects.filter(engagement=made).update(
        status=billing, payment_method_id="pm_saved", card_last4="4242", started_at=timezone.now() - timedelta(days=60)
    )
    CustomerFactory.create(client=made.client)
    PayoutAccount.objects.update_or_create(
        engineer=made.engineer, defaults={"stripe_account_id": f"acct_{made.pk}", "payouts_enabled": True}
    )
    return made


def _close(minutes: int) -> Callable[[], object]:
    # At 10.00 an hour a minute comes to 17 cents, below Stripe's minimum charge of 50.
    timesheet = _week(_engagement(rate_minor=1_000), T.OPEN, minutes=minutes)
    return lambda: hourly._close_one(timesheet.pk, timezone.now())


def _dispute() -> Callable[[], object]:
    made = _engagement()
    timesheet = _week(made, T.SUBMITTED)
    entry = timesheet.entries.get()
    return lambda: hourly.timesheet_dispute(client=made.client, timesheet_id=timesheet.pk, entries=[(entry.pk, "no")])


def _approve(billing: str) -> Callable[[], object]:
    made = _engagement(billing)
    timesheet = _week(made, T.SUBMITTED)
    return lambda: timesheet_billing._charge_claim(actor=made.client, timesheet_id=timesheet.pk, approving=True)


def _settle(disputed_minutes: int) -> Callable[[], object]:
    timesheet = _week(_engagement(), T.DISPUTED, disputed_minutes=disputed_minutes)
    share = hourly.disputed_amount(timesheet) if disputed_minutes < timesheet.minutes else 0
    return lambda: hourly.timesheet_settle(
        staff=StaffFactory.create(), timesheet_id=timesheet.pk, engineer_share_minor=share
    )


def _charge(status: str) -> Callable[[], object]:
    timesheet = _week(_engagement(), status, charge_failures=int(status == T.CHARGE_FAILED))
    return lambda: timesheet_billing._charge_claim(actor=None, timesheet_id=timesheet.pk, approving=False)


def _give_back_charge() -> Callable[[], object]:
    timesheet = _week(_engagement(), T.CHARGING)
    return lambda: timesheet_billing._charge_give_back(timesheet_id=timesheet.pk, back_to=T.APPROVED, refused="")


def _charge_fails(*, last: bool) -> Callable[[], object]:
    failures = len(settings.TIMESHEET_CHARGE_RETRY_DAYS) if last else 0
    timesheet = _week(_engagement(), T.CHARGING, charge_failures=failures)
    return lambda: timesheet_billing._charge_failed(
        timesheet_id=timesheet.pk, intent_id="pi_week", code="card_declined", message="Your card was declined."
    )


def _charged(status: str, billing: str = B.ACTIVE) -> Callable[[], object]:
    timesheet = _week(_engagement(billing), status)
    return lambda: timesheet_billing._charged_record(
        timesheet_id=timesheet.pk, intent_id="pi_week", charge_id="ch_week"
    )


def _pay() -> Callable[[], object]:
    timesheet = _week(_engagement(), T.CHARGED)
    return lambda: timesheet_billing._pay_claim(timesheet_id=timesheet.pk)


def _give_back_payout() -> Callable[[], object]:
    timesheet = _week(_engagement(), T.PAYING)
    return lambda: timesheet_billing._pay_give_back(timesheet_id=timesheet.pk, refused="")


def _paid() -> Callable[[], object]:
    timesheet = _week(_engagement(), T.PAYING)
    ledger.book_timesheet_charge(timesheet)
    return lambda: timesheet_billing._paid_record(timesheet_id=timesheet.pk, transfer_id="tr_week")


def _card_saved(billing: str) -> Callable[[], object]:
    made = _engagement(billing)
    return lambda: hourly._card_saved(engagement_id=made.pk, payment_method_id="pm_new", brand="visa", last4="1881")


# Each step that changes a state, from a state it starts from, and the moves it makes (machine -> pairs).
STEPS: dict[str, tuple[Callable[[], Callable[[], object]], dict[str, Pairs]]] = {
    "a week with no time closes": (lambda: _close(0), {"timesheet": {(T.OPEN, T.VOID)}}),
    "a week below Stripe's minimum closes": (lambda: _close(1), {"timesheet": {(T.OPEN, T.CARRIED_OVER)}}),
    "a week closes": (lambda: _close(120), {"timesheet": {(T.OPEN, T.SUBMITTED)}}),
    "the client disputes": (_dispute, {"timesheet": {(T.SUBMITTED, T.DISPUTED)}}),
    "approved with no working card": (
        lambda: _approve(B.AWAITING_PAYMENT_METHOD),
        {"timesheet": {(T.SUBMITTED, T.APPROVED)}},
    ),
    "approved and charged": (lambda: _approve(B.ACTIVE), {"timesheet": {(T.SUBMITTED, T.CHARGING)}}),
    "settled at a share": (lambda: _settle(60), {"timesheet": {(T.DISPUTED, T.APPROVED)}}),
    "settled at nothing": (lambda: _settle(120), {"timesheet": {(T.DISPUTED, T.VOID)}}),
    "an approved week is charged": (lambda: _charge(T.APPROVED), {"timesheet": {(T.APPROVED, T.CHARGING)}}),
    "a failed week is charged again": (
        lambda: _charge(T.CHARGE_FAILED),
        {"timesheet": {(T.CHARGE_FAILED, T.CHARGING)}},
    ),
    "a charge Stripe never got goes back": (_give_back_charge, {"timesheet": {(T.CHARGING, T.APPROVED)}}),
    "the card is declined": (lambda: _charge_fails(last=False), {"timesheet": {(T.CHARGING, T.CHARGE_FAILED)}}),
    "the card is declined the last time": (
        lambda: _charge_fails(last=True),
        {"timesheet": {(T.CHARGING, T.CHARGE_FAILED)}, "billing": {(B.ACTIVE, B.PAUSED)}},
    ),
    "the charge is recorded": (lambda: _charged(T.CHARGING), {"timesheet": {(T.CHARGING, T.CHARGED)}}),
    "the client pays the last failed week": (
        lambda: _charged(T.CHARGE_FAILED, billing=B.PAUSED),
        {"timesheet": {(T.CHARGE_FAILED, T.CHARGED)}, "billing": {(B.PAUSED, B.ACTIVE)}},
    ),
    "the engineer's payout is claimed": (_pay, {"timesheet": {(T.CHARGED, T.PAYING)}}),
    "a payout Stripe never got goes back": (_give_back_payout, {"timesheet": {(T.PAYING, T.CHARGED)}}),
    "the payout is recorded": (_paid, {"timesheet": {(T.PAYING, T.PAID)}}),
    "the first card is saved": (
        lambda: _card_saved(B.AWAITING_PAYMENT_METHOD),
        {"billing": {(B.AWAITING_PAYMENT_METHOD, B.ACTIVE)}},
    ),
    "a new card while paused": (lambda: _card_saved(B.PAUSED), {"billing": {(B.PAUSED, B.ACTIVE)}}),
    "a new card while active": (lambda: _card_saved(B.ACTIVE), {}),
}


@pytest.mark.parametrize("step", STEPS)
def test_each_step_makes_the_moves_listed_and_each_is_in_its_table(rubric, step):
    setup, expected = STEPS[step]
    call = setup()

    made = moves_made(call)

    assert made == {"timesheet": expected.get("timesheet", set()), "billing": expected.get("billing", set())}
    assert made["timesheet"] <= pairs_of(TIMESHEET_MOVES)
    assert made["billing"] <= pairs_of(BILLING_MOVES)


@pytest.mark.parametrize(("machine", "table"), [("timesheet", TIMESHEET_MOVES), ("billing", BILLING_MOVES)])
def test_between_them_the_steps_make_every_move_of_every_table(machine, table):
    listed = set().union(*(expected.get(machine, set()) for _, expected in STEPS.values()))

    assert listed == pairs_of(table)
