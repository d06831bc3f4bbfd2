"""Hourly weeks as a state machine: random stories of logging, review, disputes, off-session charges that fail
and are retried, card changes, 3D Secure confirmed by the client, duplicated or late webhooks and crashes between
phases, with the money invariants checked after every step."""

import contextlib
import os
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from marketplace.errors import DomainError
from payments import gateway, services
from payments.errors import PaymentRefused
from payments.models import TIMESHEET_STEP_STATES, LedgerTransaction, TimeEntry, Timesheet, TimesheetStatus
from payments.selectors import ledger_problems
from payments.services import timesheet_billing as billing
from payments.services.hourly import week_bounds
from tests.factories import StaffFactory
from tests.payments.conftest import deliver_webhooks
from tests.payments.helpers import hourly_engagement, last_monday, save_card

pytestmark = pytest.mark.django_db

T = TimesheetStatus

EXAMPLES = int(os.environ.get("TIMESHEET_EXAMPLES", "30"))
# The story's weeks, oldest first (weeks before this one); they close in this order, as the beat job does.
WEEKS = [4, 3, 2, 1]
# Long enough ago that every week of the story falls after the engagement's start.
STARTED_DAYS_AGO = 35
CARDS = ["pm_card_visa", "pm_card_chargeCustomerFail", "pm_card_authenticationRequired"]
# Where a process dies mid-step: after the claim committed, before Stripe heard of it ("call"), or after
# Stripe answered, before the record committed ("record").
KILL_POINTS = {
    "call": ["create_payment_intent", "confirm_payment_intent", "create_transfer"],
    "record": ["_charged_record", "_charge_failed", "_paid_record"],
}
# Weeks with money still to move, and so a Stripe step to die in.
MOVABLE = [T.SUBMITTED, T.DISPUTED, T.APPROVED, T.CHARGE_FAILED, T.CHARGED]
HOOKS = httpx.Client(timeout=10)
pay_now = async_to_sync(services.atimesheet_pay_now)


def timesheet_machine(run, http_client, made, staff):
    class Weeks(RuleBasedStateMachine):
        entries = Bundle("entries")

        def __init__(self) -> None:
            super().__init__()
            # Webhooks the previous story left in flight must land before the slate is wiped.
            run.drain()
            run.double.reset(keep_accounts=True)
            run.collector.received.clear()
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
            self.closed = 0  # how many of WEEKS have closed

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)

        def attempt(self, call) -> None:
            # A refusal is a fine outcome and the invariants say whether it was right; Stripe refusing a
            # request for a reason other than the card is a failure of ours.
            try:
                call()
            except PaymentRefused:
                raise
            except DomainError:
                pass

        def sheet(self, pick: int) -> Timesheet | None:
            sheets = list(Timesheet.objects.filter(engagement=made).order_by("week_start"))
            return sheets[pick % len(sheets)] if sheets else None

        def close_next_week(self) -> None:
            """The beat job runs after the next week's edit grace: every open week up to it goes to the client."""
            monday = last_monday(WEEKS[self.closed])
            grace = django_settings.TIMESHEET_EDIT_GRACE_HOURS
            services.timesheets_close(now=monday + timedelta(days=7, hours=grace + 1))
            self.closed += 1

        def log_entry(self, weeks_ago: int, day: int, slot: int, minutes: int) -> int | None:
            monday = last_monday(weeks_ago)
            try:
                entry = services.time_entry_log(
                    engineer=made.engineer,
                    engagement_id=made.pk,
                    started_at=monday + timedelta(days=day, hours=8 * slot),
                    minutes=minutes,
                    note="worker pool",
                    now=monday + timedelta(days=6, hours=23, minutes=59),
                )
            except DomainError:
                return None
            return entry.pk

        @initialize(target=entries, card=st.sampled_from(CARDS), minutes=st.integers(3, 480))
        def hired_and_a_week_sent(self, card, minutes):
            """A card saved at hire and the first week logged and sent to the client, so most stories reach money."""
            save_card(run, http_client, made, card, started_days_ago=STARTED_DAYS_AGO)
            logged = self.log_entry(WEEKS[0], 0, 1, minutes)
            self.close_next_week()
            return multiple() if logged is None else logged

        # Minutes from one (a week below Stripe's minimum is carried into the next) to a working day.
        @rule(
            target=entries,
            weeks_ago=st.sampled_from(WEEKS),
            day=st.integers(0, 6),
            slot=st.integers(0, 2),
            minutes=st.one_of(st.integers(1, 4), st.integers(5, 480)),
        )
        def log(self, weeks_ago, day, slot, minutes):
            logged = self.log_entry(weeks_ago, day, slot, minutes)
            return multiple() if logged is None else logged

        @rule(entry_id=entries, minutes=st.integers(1, 480))
        def edit(self, entry_id, minutes):
            week = TimeEntry.objects.get(pk=entry_id).timesheet.week_start
            self.attempt(
                lambda: services.time_entry_edit(
                    engineer=made.engineer,
                    entry_id=entry_id,
                    minutes=minutes,
                    now=week_bounds(week)[1] - timedelta(minutes=1),
                )
            )

        @precondition(lambda self: self.closed < len(WEEKS))
        @rule()
        def close(self):
            self.close_next_week()

        @rule(pick=st.integers(0, 3))
        def approve(self, pick):
            if (found := self.sheet(pick)) is not None:
                self.attempt(lambda: services.timesheet_approve(client=made.client, timesheet_id=found.pk))

        @rule(pick=st.integers(0, 3), every_entry=st.booleans())
        def dispute(self, pick, every_entry):
            if (found := self.sheet(pick)) is not None:
                entries = list(found.entries.values_list("pk", flat=True))[: None if every_entry else 1]
                self.attempt(
                    lambda: services.timesheet_dispute(
                        client=made.client,
                        timesheet_id=found.pk,
                        entries=[(pk, "not on this project") for pk in entries],
                    )
                )

        @rule(pick=st.integers(0, 3), share=st.floats(0, 1))
        def settle(self, pick, share):
            """Staff settle a disputed week; the API then charges it."""
            if (found := self.sheet(pick)) is None:
                return
            at_stake = services.disputed_amount(found)

            def settle_and_charge():
                services.timesheet_settle(
                    staff=staff, timesheet_id=found.pk, engineer_share_minor=int(at_stake * share)
                )
                services.timesheet_charge(timesheet_id=found.pk)

            self.attempt(settle_and_charge)

        @rule(card=st.sampled_from(CARDS))
        def card_saved(self, card):
            """The client saves another card (a declining one, or one that fixes the failed weeks)."""
            save_card(run, http_client, made, card, started_days_ago=STARTED_DAYS_AGO)

        @rule(pick=st.integers(0, 3), authenticates=st.booleans())
        def client_pays_now(self, pick, authenticates):
            """The client follows the "pay now" link; after authentication_required they confirm in Stripe.js."""
            if (found := self.sheet(pick)) is None:
                return
            answer = []
            self.attempt(lambda: answer.append(pay_now(client=made.client, timesheet_id=found.pk)))
            if answer and answer[0].client_secret:
                intent_id = answer[0].timesheet.payment_intent_id
                intent = run.client.v1.payment_intents.retrieve(intent_id)
                if intent.status == "requires_payment_method":  # not when an earlier visit left 3D Secure open
                    intent = run.client.v1.payment_intents.confirm(intent_id)
                if authenticates and intent.status == "requires_action":
                    HOOKS.post(f"{run.base}/_test/payment_intents/{intent_id}/authenticate")

        @rule(days=st.sampled_from([0, 1, 3, 6]))
        def sweep(self, days):
            """The payments sweep, `days` later: auto-approvals, retries that are due, payouts."""
            services.timesheets_sweep(now=timezone.now() + timedelta(days=days))

        @rule()
        def retries_run_out(self):
            """Every retry of the schedule comes and goes; a card that still fails pauses the engagement."""
            for _ in range(len(django_settings.TIMESHEET_CHARGE_RETRY_DAYS) + 1):
                services.timesheets_sweep(now=timezone.now() + timedelta(days=6))

        @rule(duplicates=st.integers(1, 3), reverse=st.booleans())
        def webhooks_arrive(self, duplicates, reverse):
            run.drain()
            received = list(run.collector.received)
            if reverse:
                received.reverse()
            run.collector.received[:] = [item for item in received for _ in range(duplicates)]
            deliver_webhooks(run, http_client)

        @rule()
        def webhooks_held(self):
            HOOKS.post(f"{run.base}/_test/webhooks/hold", data={"hold": "true"})

        @rule(reverse=st.booleans())
        def webhooks_released(self, reverse):
            HOOKS.post(f"{run.base}/_test/webhooks/release", data={"order": "reverse" if reverse else "forward"})

        @rule(
            pick=st.integers(0, 3),
            phase=st.sampled_from(sorted(KILL_POINTS)),
            spared=st.integers(0, 1),
            by_client=st.booleans(),
        )
        def killed_between_phases(self, pick, phase, spared, by_client):
            """The process dies at the next Stripe step (or the one after: `spared`) of whatever moves a week on."""
            sheets = list(Timesheet.objects.filter(engagement=made, status__in=MOVABLE).order_by("week_start"))
            if not sheets:
                return
            found = sheets[pick % len(sheets)]
            module = gateway if phase == "call" else billing
            left = [spared]

            def dying(real):
                def step(*args, **kwargs):
                    if left[0] == 0:
                        raise RuntimeError(f"killed {phase}")
                    left[0] -= 1
                    return real(*args, **kwargs)

                return step

            reals = {name: getattr(module, name) for name in KILL_POINTS[phase]}
            settle = lambda: services.timesheet_charge(  # noqa: E731 - as the staff endpoint does
                timesheet_id=services.timesheet_settle(
                    staff=staff, timesheet_id=found.pk, engineer_share_minor=services.disputed_amount(found)
                ).pk
            )
            sweep = lambda: services.timesheets_sweep(now=timezone.now() + timedelta(days=6))  # noqa: E731
            calls = {
                T.SUBMITTED: lambda: services.timesheet_approve(client=made.client, timesheet_id=found.pk),
                T.DISPUTED: settle,
                T.CHARGE_FAILED: (lambda: pay_now(client=made.client, timesheet_id=found.pk)) if by_client else sweep,
            }
            for name, real in reals.items():
                setattr(module, name, dying(real))
            try:
                with contextlib.suppress(RuntimeError, DomainError):
                    calls.get(found.status, sweep)()
            finally:
                for name, real in reals.items():
                    setattr(module, name, real)

        @rule()
        def sweep_after_the_crash(self):
            """A minute later the sweep finds every step left in flight and finishes it, once."""
            later = timezone.now() + timedelta(seconds=django_settings.PAYMENT_STEP_STALE_SECONDS + 1)
            services.timesheets_sweep(now=later)
            assert not Timesheet.objects.filter(engagement=made, status__in=TIMESHEET_STEP_STATES).exists()

        @rule()
        def everything_lands(self):
            """Held webhooks go out and arrive, the sweep finishes what crashed: each payment Stripe took is booked."""
            HOOKS.post(f"{run.base}/_test/webhooks/release", data={"order": "forward"})
            deliver_webhooks(run, http_client)
            services.timesheets_sweep(
                now=timezone.now() + timedelta(seconds=django_settings.PAYMENT_STEP_STALE_SECONDS + 1)
            )
            for intent in run.double.objects["payment_intents"].values():
                if intent["status"] == "succeeded":
                    found = Timesheet.objects.get(pk=intent["metadata"]["timesheet_id"])
                    assert (found.status, found.payment_intent_id) == (T.PAID, intent["id"])

        @invariant()
        def books_are_right(self):
            assert ledger_problems() == []

        @invariant()
        def never_charged_twice(self):
            intents = list(run.double.objects["payment_intents"].values())
            charges = list(run.double.objects["charges"].values())
            transfers = list(run.double.objects["transfers"].values())
            for found in Timesheet.objects.filter(engagement=made):
                mine = [i for i in intents if i["metadata"].get("timesheet_id") == str(found.pk)]
                assert len(mine) <= 1  # one PaymentIntent per week, ever
                paid = [c for c in charges if c["paid"] and c["payment_intent"] in {i["id"] for i in mine}]
                assert [c["amount"] for c in paid] in ([], [found.amount_minor])
                assert LedgerTransaction.objects.filter(timesheet=found, kind="timesheet_charge").count() <= 1
                sent = [t for t in transfers if t["transfer_group"] == f"timesheet-{found.pk}"]
                assert len(sent) <= 1
                if found.status == T.PAID:
                    fee = found.amount_minor * django_settings.PLATFORM_FEE_BP // 10_000
                    assert [t["amount"] for t in sent] == [found.amount_minor - fee]

    return Weeks


def test_timesheet_invariants_hold_in_every_story(client, rubric, stripe_settings):
    # One onboarded engagement for every story at 10.00 an hour (a few minutes is below Stripe's minimum);
    # each story's card, weeks and Stripe objects are rolled back or wiped after it.
    machine = timesheet_machine(stripe_settings, client, hourly_engagement(rate_minor=1_000), StaffFactory.create())

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
