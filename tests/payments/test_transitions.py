"""Every move a milestone may make, every move it may not, who writes a state at all, and the fee's rounding rule."""

import itertools
import logging

import pytest

from payments import services
from payments.errors import MilestoneStateConflict
from payments.models import ALLOWED_MOVES, Milestone, MilestoneEvent, MilestoneStatus
from payments.selectors import ledger_problems
from payments.services.transitions import move
from tests.factories import MilestoneFactory, StaffFactory
from tests.payments.conftest import deliver_webhooks
from tests.payments.helpers import engagement, funded
from tests.status_writes import status_writes

pytestmark = pytest.mark.django_db

STATUSES = [status.value for status in MilestoneStatus]
PAIRS = list(itertools.product(STATUSES, STATUSES))


def _milestone_in(status: str) -> Milestone:
    return MilestoneFactory.create(status=status, payment_intent_id="pi_test", charge_id="ch_test")


@pytest.mark.parametrize(("from_status", "to_status"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_the_table_decides_every_move(rubric, from_status, to_status):
    milestone = _milestone_in(from_status)
    allowed = to_status in ALLOWED_MOVES[from_status]

    if allowed:
        move(milestone, MilestoneStatus(to_status), actor=None, fields=[])
    else:
        with pytest.raises(MilestoneStateConflict):
            move(milestone, MilestoneStatus(to_status), actor=None, fields=[])

    stored = Milestone.objects.get(pk=milestone.pk).status
    assert stored == (to_status if allowed else from_status)
    assert MilestoneEvent.objects.filter(milestone=milestone).count() == int(allowed)


def test_the_table_names_every_status_and_final_states_go_nowhere():
    assert set(ALLOWED_MOVES) == set(STATUSES)
    assert ALLOWED_MOVES[MilestoneStatus.RELEASED] == frozenset()
    assert ALLOWED_MOVES[MilestoneStatus.REFUNDED] == frozenset()
    assert MilestoneStatus.APPROVED not in ALLOWED_MOVES[MilestoneStatus.AWAITING_FUNDING]
    assert MilestoneStatus.RELEASING not in ALLOWED_MOVES[MilestoneStatus.AWAITING_FUNDING]


def test_only_the_move_functions_write_a_state():
    assert status_writes("payments") == {
        ("payments/services/transitions.py", "move"),  # milestones, ALLOWED_MOVES
        ("payments/services/hourly.py", "move"),  # timesheets, TIMESHEET_MOVES
        ("payments/services/hourly.py", "billing_move"),  # hourly billing, BILLING_MOVES
        # A card dispute's status is Stripe's, copied as Stripe reports it: not a state machine of ours.
        ("payments/services/webhooks.py", "_dispute_record"),
    }


# Which states each operation starts from; from any other it is refused before anything happens.
OPERATIONS = {
    "fund": ({"draft", "awaiting_funding"}, lambda m, c, e, s: services.milestone_fund(client=c, milestone_id=m)),
    "submit": (
        {"funded", "changes_requested"},
        lambda m, c, e, s: services.milestone_submit(engineer=e, milestone_id=m),
    ),
    "request_changes": (
        {"submitted"},
        lambda m, c, e, s: services.milestone_request_changes(client=c, milestone_id=m, note="more"),
    ),
    "approve": ({"submitted"}, lambda m, c, e, s: services.milestone_approve(client=c, milestone_id=m)),
    "refund": ({"funded"}, lambda m, c, e, s: services.milestone_refund(client=c, milestone_id=m)),
    "cancel": ({"draft", "awaiting_funding"}, lambda m, c, e, s: services.milestone_cancel(client=c, milestone_id=m)),
    "dispute": (
        {"submitted", "changes_requested"},
        lambda m, c, e, s: services.milestone_dispute(user=c, milestone_id=m, reason="not as agreed"),
    ),
    "settle": (
        {"disputed"},
        lambda m, c, e, s: services.milestone_settle(staff=s, milestone_id=m, engineer_share_minor=0),
    ),
}
REFUSED = [(op, status) for op, (allowed, _) in OPERATIONS.items() for status in STATUSES if status not in allowed]


@pytest.mark.parametrize(("operation", "status"), REFUSED, ids=[f"{op}-from-{st}" for op, st in REFUSED])
def test_each_operation_is_refused_from_every_other_state_and_changes_nothing(rubric, operation, status):
    milestone = _milestone_in(status)
    staff = StaffFactory.create()
    before = Milestone.objects.values().get(pk=milestone.pk)
    _, call = OPERATIONS[operation]

    with pytest.raises(MilestoneStateConflict):
        call(milestone.pk, milestone.engagement.client, milestone.engagement.engineer, staff)

    assert Milestone.objects.values().get(pk=milestone.pk) == before
    assert MilestoneEvent.objects.filter(milestone=milestone).count() == 0


def test_approving_an_unpaid_milestone_is_refused_before_any_database_constraint(rubric):
    milestone = _milestone_in("awaiting_funding")

    with pytest.raises(MilestoneStateConflict, match="awaiting_funding milestone cannot be approved"):
        services.milestone_approve(client=milestone.engagement.client, milestone_id=milestone.pk)

    assert Milestone.objects.get(pk=milestone.pk).status == "awaiting_funding"


@pytest.mark.parametrize(
    ("fee_bp", "amount", "fee"),
    [(1000, 1_005, 100), (1000, 1_009, 100), (1000, 999, 99), (250, 1_001, 25), (1000, 50, 5), (0, 10_000, 0)],
)
def test_the_fee_rounds_down_to_a_whole_minor_unit(settings, fee_bp, amount, fee):
    settings.PLATFORM_FEE_BP = fee_bp

    assert services.fee_for(amount) == fee


def test_a_release_whose_fee_is_not_whole_pays_the_engineer_the_fraction(client, rubric, stripe_settings, settings):
    settings.PLATFORM_FEE_BP = 1000
    made = engagement()
    work = funded(stripe_settings, client, made, amount=10_009)  # 10% is 1,000.9 cents
    services.milestone_submit(engineer=made.engineer, milestone_id=work.pk)

    released = services.milestone_approve(client=made.client, milestone_id=work.pk)
    deliver_webhooks(stripe_settings, client)

    transfer = stripe_settings.double.objects["transfers"][released.transfer_id]
    assert transfer["amount"] == 9_009
    assert ledger_problems() == []


def test_staff_alerts_reach_every_active_staff_member_and_the_error_log(caplog):
    from marketplace.models import Notification
    from payments.services.transitions import alert_staff
    from tests.factories import StaffFactory

    on_duty, away = StaffFactory.create(), StaffFactory.create(is_active=False)
    payload = {"milestone_id": 7, "reason": "Stripe refused"}

    with caplog.at_level(logging.ERROR, logger="payments.services.transitions"):
        alert_staff(event="milestone.release_refused", payload=payload)

    told = Notification.objects.filter(event="milestone.release_refused")
    assert list(told.values_list("user_id", "payload")) == [(on_duty.pk, payload)]
    assert not told.filter(user=away).exists()
    (record,) = [r for r in caplog.records if r.message == "milestone.release_refused"]
    assert (record.levelname, record.milestone_id, record.reason) == ("ERROR", 7, "Stripe refused")
