"""A step Stripe refused, or never received, gives its claim back: the milestone returns to where it was.

The rules (payments/services/milestones.py, docs/payments.md): a call that never reached Stripe
(`sent=False`) or that Stripe refused gives the claim back in a transaction of its own; a refusal
counts as an attempt and is noted on the milestone's history, and where money is held, staff are
told. A call that may have reached Stripe (`sent=True`) keeps its claim for the sweep.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from marketplace.errors import Forbidden
from marketplace.models import Notification
from payments import gateway, services
from payments.errors import MilestoneNotFound, MilestoneStateConflict, PaymentRefused, PaymentsUnavailable
from payments.models import LedgerTransaction, Milestone, MilestoneEvent
from payments.selectors import ledger_problems
from tests.factories import ClientFactory
from tests.payments.helpers import after_a_stale_step, disputed, engagement, funded, milestone, submitted

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_fails(monkeypatch):
    """`with stripe_fails(operation, error):` `gateway.<operation>` raises `error` instead of calling the double."""

    @contextmanager
    def failing(operation: str, error: Exception) -> Iterator[None]:
        async def fail(*args, **kwargs):
            raise error

        with monkeypatch.context() as patch:
            patch.setattr(gateway, operation, fail)
            yield

    return failing


def last_move(work: Milestone) -> tuple[str, str, str]:
    event = MilestoneEvent.objects.filter(milestone=work).latest("pk")
    return event.from_status, event.to_status, event.note


def asked_stripe_under(run, key: str) -> bool:
    return key in run.double.idempotency


def alerts(event: str) -> list[dict[str, object]]:
    return list(Notification.objects.filter(event=event).values_list("payload", flat=True))


# --- funding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "attempts", "note"),
    [(PaymentsUnavailable(sent=False), 0, ""), (PaymentRefused("card_declined"), 1, "Stripe refused")],
    ids=["never-received", "refused"],
)
def test_a_failed_funding_goes_back_to_draft_and_a_refusal_counts_as_an_attempt(
    rubric, stripe_settings, error, attempts, note, stripe_fails
):
    made = engagement()
    draft = milestone(made)

    with stripe_fails("create_payment_intent", error), pytest.raises(type(error)):
        services.milestone_fund(client=made.client, milestone_id=draft.pk)

    back = Milestone.objects.get(pk=draft.pk)
    assert (back.status, back.step_attempt, back.step_claimed_at, back.payment_intent_id) == (
        "draft",
        attempts,
        None,
        "",
    )
    assert last_move(back) == ("funding", "draft", note)
    retried = services.milestone_fund(client=made.client, milestone_id=draft.pk)
    assert retried.status == "awaiting_funding"
    assert asked_stripe_under(stripe_settings, f"milestone-{draft.pk}-fund-{attempts}")


def test_a_funding_that_may_have_reached_stripe_keeps_its_claim_for_the_sweep(rubric, stripe_settings, stripe_fails):
    made = engagement()
    draft = milestone(made)

    with stripe_fails("create_payment_intent", PaymentsUnavailable(sent=True)), pytest.raises(PaymentsUnavailable):
        services.milestone_fund(client=made.client, milestone_id=draft.pk)

    kept = Milestone.objects.get(pk=draft.pk)
    assert (kept.status, kept.step_attempt) == ("funding", 0)
    assert kept.step_claimed_at is not None

    assert services.steps_resume(now=after_a_stale_step()) == {"resumed": 1, "failed": 0}
    resumed = Milestone.objects.get(pk=draft.pk)
    assert resumed.status == "awaiting_funding"
    assert stripe_settings.double.idempotency[f"milestone-{draft.pk}-fund-0"][0] == json.dumps(
        [
            "POST",
            "/v1/payment_intents",
            {
                "amount": "50000",
                "capture_method": "automatic",
                "currency": "usd",
                "metadata": {"milestone_id": str(draft.pk)},
                "transfer_group": f"milestone-{draft.pk}",
            },
        ],
        sort_keys=True,
    )


def test_one_resumer_takes_over_a_stale_step_and_a_second_finds_it_taken(rubric, stripe_settings, stripe_fails):
    from payments.services.milestones import _take_over

    made = engagement()
    draft = milestone(made)
    with stripe_fails("create_payment_intent", PaymentsUnavailable(sent=True)), pytest.raises(PaymentsUnavailable):
        services.milestone_fund(client=made.client, milestone_id=draft.pk)
    stale = timedelta(seconds=settings.PAYMENT_STEP_STALE_SECONDS)
    Milestone.objects.filter(pk=draft.pk).update(step_claimed_at=timezone.now() - stale - timedelta(seconds=1))
    stale_before = timezone.now() - stale  # what two sweeps running at once both compute

    first = _take_over(milestone_id=draft.pk, stale_before=stale_before)
    second = _take_over(milestone_id=draft.pk, stale_before=stale_before)

    assert first is not None
    assert first.pk == draft.pk
    assert second is None


# --- a client's refund -----------------------------------------------------------------------------


def test_a_refund_stripe_never_received_goes_back_to_funded_and_tells_nobody(
    client, rubric, stripe_settings, staff, stripe_fails
):
    made = engagement()
    paid = funded(stripe_settings, client, made)

    with stripe_fails("create_refund", PaymentsUnavailable(sent=False)), pytest.raises(PaymentsUnavailable):
        services.milestone_refund(client=made.client, milestone_id=paid.pk)

    back = Milestone.objects.get(pk=paid.pk)
    assert (back.status, back.step_attempt, back.step_claimed_at, back.refund_id) == ("funded", 0, None, "")
    assert last_move(back) == ("refunding", "funded", "")
    assert alerts("milestone.refund_refused") == []
    assert list(LedgerTransaction.objects.filter(milestone=paid).values_list("kind", flat=True)) == ["fund"]


def test_a_refused_refund_goes_back_to_funded_as_one_attempt_and_tells_staff(
    client, rubric, stripe_settings, staff, stripe_fails
):
    made = engagement()
    paid = funded(stripe_settings, client, made)

    with stripe_fails("create_refund", PaymentRefused("charge_disputed")), pytest.raises(PaymentRefused):
        services.milestone_refund(client=made.client, milestone_id=paid.pk)

    back = Milestone.objects.get(pk=paid.pk)
    assert (back.status, back.step_attempt, back.step_claimed_at) == ("funded", 1, None)
    assert last_move(back) == ("refunding", "funded", "Stripe refused the Refund: charge_disputed")
    assert alerts("milestone.refund_refused") == [
        {"milestone_id": paid.pk, "reason": "Stripe refused the Refund: charge_disputed"}
    ]
    refunded = services.milestone_refund(client=made.client, milestone_id=paid.pk)
    assert refunded.status == "refunded"
    assert ledger_problems() == []


# --- a staff settlement ------------------------------------------------------------------------------


def refused_settlement(run, client, staff, stripe_fails, engineer_share_minor: int) -> Milestone:
    """A disputed milestone whose settlement Stripe refused at the Refund; as stored afterwards."""
    paid = disputed(run, client, engagement())
    with stripe_fails("create_refund", PaymentRefused("charge_disputed")), pytest.raises(PaymentRefused):
        services.milestone_settle(staff=staff, milestone_id=paid.pk, engineer_share_minor=engineer_share_minor)
    return Milestone.objects.get(pk=paid.pk)


def test_a_refused_settlement_goes_back_to_disputed_forgets_the_split_and_tells_staff(
    client, rubric, stripe_settings, staff, stripe_fails
):
    back = refused_settlement(stripe_settings, client, staff, stripe_fails, engineer_share_minor=0)

    assert (back.status, back.step_attempt, back.settle_share_minor, back.step_claimed_at) == (
        "disputed",
        1,
        None,
        None,
    )
    assert last_move(back) == ("settling", "disputed", "Stripe refused: charge_disputed")
    assert alerts("milestone.settle_refused") == [
        {"milestone_id": back.pk, "reason": "Stripe refused: charge_disputed"}
    ]
    settled = services.milestone_settle(staff=staff, milestone_id=back.pk, engineer_share_minor=0)
    assert settled.status == "refunded"
    assert ledger_problems() == []


def test_a_settlement_whose_transfer_went_through_keeps_settling_when_the_refund_is_refused(
    client, rubric, stripe_settings, staff, stripe_fails
):
    kept = refused_settlement(stripe_settings, client, staff, stripe_fails, engineer_share_minor=30_000)

    # The engineer's share left escrow: the split cannot be taken back, so staff finish it.
    assert (kept.status, kept.settle_share_minor, kept.step_attempt) == ("settling", 30_000, 0)
    assert kept.transfer_id
    # Its Transfer is not yet booked, and the comparison with Stripe waits for the settlement to finish.
    assert services.ledger_compare_with_stripe() == []
    assert alerts("milestone.settle_refused") == [
        {"milestone_id": kept.pk, "reason": "Stripe refused: charge_disputed"}
    ]


# --- every refusal is one more attempt, with a key of its own -------------------------------------------


def test_each_refusal_of_a_step_is_one_more_attempt(client, rubric, stripe_settings, staff, stripe_fails):
    made = engagement()
    draft = milestone(made)
    paid = funded(stripe_settings, client, made)
    settled = disputed(stripe_settings, client, made)
    done = submitted(stripe_settings, client, made)
    steps = [
        ("create_payment_intent", lambda: services.milestone_fund(client=made.client, milestone_id=draft.pk), draft),
        ("create_refund", lambda: services.milestone_refund(client=made.client, milestone_id=paid.pk), paid),
        ("create_transfer", lambda: services.milestone_approve(client=made.client, milestone_id=done.pk), done),
        (
            "create_refund",
            lambda: services.milestone_settle(staff=staff, milestone_id=settled.pk, engineer_share_minor=0),
            settled,
        ),
    ]

    for operation, step, work in steps:
        with stripe_fails(operation, PaymentRefused("declined")):
            for _ in range(2):
                with pytest.raises(PaymentRefused):
                    step()
        assert Milestone.objects.get(pk=work.pk).step_attempt == 2, operation

    assert services.milestone_fund(client=made.client, milestone_id=draft.pk).status == "awaiting_funding"
    assert asked_stripe_under(stripe_settings, f"milestone-{draft.pk}-fund-2")


# --- cancel --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "note"),
    [
        (PaymentsUnavailable(sent=False), ""),
        (PaymentRefused("resource_missing"), "Stripe refused: resource_missing"),
    ],
    ids=["never-received", "refused"],
)
def test_a_failed_cancel_goes_back_to_awaiting_funding_and_says_why(rubric, stripe_settings, stripe_fails, error, note):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)

    with stripe_fails("cancel_payment_intent", error), pytest.raises(type(error)):
        services.milestone_cancel(client=made.client, milestone_id=created.pk)

    back = Milestone.objects.get(pk=created.pk)
    assert back.status == "awaiting_funding"
    assert last_move(back) == ("cancelling", "awaiting_funding", note)


# --- a settlement is noted and recorded once ------------------------------------------------------------


def test_a_settlements_transfer_is_noted_once_and_only_while_settling(
    client, rubric, stripe_settings, staff, stripe_fails
):
    from django.db import transaction

    from payments.services.milestones import _settle_note_transfer

    still_disputed = disputed(stripe_settings, client, engagement())
    settling = refused_settlement(stripe_settings, client, staff, stripe_fails, engineer_share_minor=30_000)
    first_transfer = settling.transfer_id

    with transaction.atomic():  # the function runs inside an atomic phase, under the row lock
        _settle_note_transfer(milestone_id=settling.pk, transfer_id="tr_second")
        _settle_note_transfer(milestone_id=still_disputed.pk, transfer_id="tr_stray")

    assert Milestone.objects.get(pk=settling.pk).transfer_id == first_transfer
    assert Milestone.objects.get(pk=still_disputed.pk).transfer_id == ""


def test_a_settlement_recorded_again_changes_nothing(client, rubric, stripe_settings, staff):
    from django.db import transaction

    from payments.services.milestones import _settle_record

    paid = disputed(stripe_settings, client, engagement())
    services.milestone_settle(staff=staff, milestone_id=paid.pk, engineer_share_minor=30_000)
    settled = Milestone.objects.get(pk=paid.pk)

    with transaction.atomic():  # a late second record, as a resumed step could make
        again = _settle_record(milestone_id=paid.pk, refund_id="re_second", staff=None)

    assert (again.status, again.refund_id) == ("released", settled.refund_id)
    assert Milestone.objects.get(pk=paid.pk).refund_id == settled.refund_id
    assert list(LedgerTransaction.objects.filter(milestone=paid).values_list("kind", flat=True)) == ["fund", "settle"]


# --- who may cancel ------------------------------------------------------------------------------------


def test_only_the_client_cancels_and_a_refused_cancel_changes_nothing(rubric, stripe_settings):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    before = Milestone.objects.get(pk=created.pk)

    with pytest.raises(Forbidden):
        services.milestone_cancel(client=made.engineer, milestone_id=created.pk)
    with pytest.raises(MilestoneNotFound):  # another client does not learn the milestone exists
        services.milestone_cancel(client=ClientFactory.create(), milestone_id=created.pk)

    after = Milestone.objects.get(pk=created.pk)
    assert (after.status, after.step_claimed_at) == (before.status, None)
    assert not asked_stripe_under(stripe_settings, f"milestone-{created.pk}-cancel-0")


def test_a_draft_is_cancelled_at_once_in_the_clients_name_without_asking_stripe(rubric, stripe_settings):
    made = engagement()
    draft = milestone(made)

    cancelled = services.milestone_cancel(client=made.client, milestone_id=draft.pk)

    assert cancelled.status == "cancelled"
    event = MilestoneEvent.objects.filter(milestone=draft).latest("pk")
    assert (event.from_status, event.to_status, event.actor_id) == ("draft", "cancelled", made.client.pk)
    assert not any(key.startswith(f"milestone-{draft.pk}-") for key in stripe_settings.double.idempotency)


def test_a_cancel_is_asked_in_the_clients_name_and_a_paid_milestone_cannot_be_cancelled(
    client, rubric, stripe_settings
):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    paid = funded(stripe_settings, client, made)

    services.milestone_cancel(client=made.client, milestone_id=created.pk)
    with pytest.raises(MilestoneStateConflict, match=r"^A funded milestone cannot be cancelled\.$"):
        services.milestone_cancel(client=made.client, milestone_id=paid.pk)

    asked = MilestoneEvent.objects.get(milestone=created, to_status="cancelling")
    assert asked.actor_id == made.client.pk
    assert Milestone.objects.get(pk=paid.pk).status == "funded"


# --- who may ask for changes ---------------------------------------------------------------------------


def test_only_the_client_asks_for_changes_and_only_on_submitted_work(client, rubric, stripe_settings):
    made = engagement()
    work = submitted(stripe_settings, client, made)
    paid = funded(stripe_settings, client, made)

    with pytest.raises(Forbidden):
        services.milestone_request_changes(client=made.engineer, milestone_id=work.pk, note="mine")
    with pytest.raises(MilestoneNotFound):
        services.milestone_request_changes(client=ClientFactory.create(), milestone_id=work.pk, note="not mine")
    with pytest.raises(MilestoneStateConflict, match=r"^A funded milestone has nothing to review\.$"):
        services.milestone_request_changes(client=made.client, milestone_id=paid.pk, note="too early")

    after = Milestone.objects.get(pk=work.pk)
    assert (after.status, after.change_rounds) == ("submitted", 0)
    services.milestone_request_changes(client=made.client, milestone_id=work.pk, note="tests, please")
    asked = MilestoneEvent.objects.filter(milestone=work).latest("pk")
    assert (asked.to_status, asked.actor_id, asked.note) == ("changes_requested", made.client.pk, "tests, please")


def test_a_release_stripe_never_received_goes_back_to_review_without_a_note(
    client, rubric, stripe_settings, stripe_fails
):
    made = engagement()
    work = submitted(stripe_settings, client, made)

    with stripe_fails("create_transfer", PaymentsUnavailable(sent=False)), pytest.raises(PaymentsUnavailable):
        services.milestone_approve(client=made.client, milestone_id=work.pk)

    back = Milestone.objects.get(pk=work.pk)
    assert (back.status, back.step_attempt, back.approved_at) == ("submitted", 0, None)
    assert last_move(back) == ("releasing", "submitted", "")


# --- the sweep resumes each kind of step under its first key ---------------------------------------------
# A step whose call may have reached Stripe (`sent=True`) keeps its claim; the sweep finishes it as the
# step it is (`_resume`), and a resumed step never gives its claim back: a refund owed stays owed.


def left_refunding(run, client) -> Milestone:
    made = engagement()
    paid = funded(run, client, made)
    with pytest.MonkeyPatch.context() as patch:

        async def may_have_reached(**kwargs):
            raise PaymentsUnavailable(sent=True)

        patch.setattr(gateway, "create_refund", may_have_reached)
        with pytest.raises(PaymentsUnavailable):
            services.milestone_refund(client=made.client, milestone_id=paid.pk)
    left = Milestone.objects.get(pk=paid.pk)
    assert left.status == "refunding"
    return left


def test_a_stale_refund_is_resumed_to_refunded_under_its_first_key(client, rubric, stripe_settings):
    left = left_refunding(stripe_settings, client)

    assert services.steps_resume(now=after_a_stale_step()) == {"resumed": 1, "failed": 0}

    done = Milestone.objects.get(pk=left.pk)
    assert done.status == "refunded"
    assert done.refund_id in stripe_settings.double.objects["refunds"]
    assert asked_stripe_under(stripe_settings, f"milestone-{left.pk}-refund-0")
    assert ledger_problems() == []


@pytest.mark.parametrize(
    "error", [PaymentRefused("charge_disputed"), PaymentsUnavailable(sent=False)], ids=["refused", "never-received"]
)
def test_a_resumed_refund_that_fails_stays_owed_and_is_not_given_back(
    client, rubric, stripe_settings, stripe_fails, error
):
    left = left_refunding(stripe_settings, client)

    with stripe_fails("create_refund", error):
        counts = services.steps_resume(now=after_a_stale_step())

    owed = Milestone.objects.get(pk=left.pk)
    assert counts == {"resumed": 0, "failed": 1}
    assert (owed.status, owed.step_attempt, owed.step_failures) == ("refunding", 0, 1)
    assert last_move(owed) == ("funded", "refunding", "")
    assert alerts("milestone.refund_refused") == []


def test_a_stale_settlement_is_resumed_to_its_split(client, rubric, stripe_settings, staff, stripe_fails):
    paid = disputed(stripe_settings, client, engagement())
    with stripe_fails("create_refund", PaymentsUnavailable(sent=True)), pytest.raises(PaymentsUnavailable):
        services.milestone_settle(staff=staff, milestone_id=paid.pk, engineer_share_minor=30_000)
    assert Milestone.objects.get(pk=paid.pk).status == "settling"

    assert services.steps_resume(now=after_a_stale_step()) == {"resumed": 1, "failed": 0}

    settled = Milestone.objects.get(pk=paid.pk)
    assert settled.status == "released"
    assert settled.settle_share_minor == 30_000
    assert settled.refund_id in stripe_settings.double.objects["refunds"]
    assert list(LedgerTransaction.objects.filter(milestone=paid).values_list("kind", flat=True)) == ["fund", "settle"]
    assert ledger_problems() == []


def test_a_stale_cancel_is_resumed_to_cancelled(rubric, stripe_settings, stripe_fails):
    made = engagement()
    created = milestone(made, 20_000)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    with stripe_fails("cancel_payment_intent", PaymentsUnavailable(sent=True)), pytest.raises(PaymentsUnavailable):
        services.milestone_cancel(client=made.client, milestone_id=created.pk)
    assert Milestone.objects.get(pk=created.pk).status == "cancelling"

    assert services.steps_resume(now=after_a_stale_step()) == {"resumed": 1, "failed": 0}

    cancelled = Milestone.objects.get(pk=created.pk)
    assert cancelled.status == "cancelled"
    intent = stripe_settings.double.objects["payment_intents"][cancelled.payment_intent_id]
    assert intent["status"] == "canceled"
    assert not LedgerTransaction.objects.filter(milestone=created).exists()


def test_an_ended_engagement_takes_no_new_milestone(rubric, stripe_settings):
    from datetime import date

    from marketplace.errors import EngagementNotFound

    made = engagement()
    type(made).objects.filter(pk=made.pk).update(status="ended")

    with pytest.raises(EngagementNotFound):
        services.milestone_create(
            client=made.client, engagement_id=made.pk, title="More", amount_minor=10_000, due_date=date(2099, 1, 1)
        )
    with pytest.raises(EngagementNotFound):  # nor from the engineer's side, ended or not
        services.milestone_create(
            client=made.engineer, engagement_id=made.pk, title="More", amount_minor=10_000, due_date=date(2099, 1, 1)
        )
    assert not Milestone.objects.filter(engagement=made).exists()
