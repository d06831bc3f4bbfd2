"""The payments sweep (once a minute): what it approves and releases, what it counts, and whom it tells.

Rules (payments/services/milestones.py, `apayments_sweep`; docs/payments.md): a submitted milestone
whose review window has passed is approved as if by its client; an approved milestone is released once
its engineer can be paid; one milestone's failure never stops the others; a step that fails to resume
alerts staff at its first failure, not every minute.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest

from marketplace.models import Notification
from payments import gateway, services
from payments.errors import PaymentRefused, PaymentsUnavailable
from payments.models import Milestone, MilestoneEvent
from tests.payments.helpers import after_a_stale_step, engagement, onboard, release_times_out, submitted

pytestmark = pytest.mark.django_db


@pytest.fixture
def transfers_refused_for(monkeypatch):
    """`with transfers_refused_for(milestone_id):` Stripe refuses that milestone's Transfer and makes the others."""
    real = gateway.create_transfer

    @contextmanager
    def refusing_one(milestone_id: int) -> Iterator[None]:
        async def refusing(**params):
            if params["transfer_group"] == f"milestone-{milestone_id}":
                raise PaymentRefused("insufficient_funds")
            return await real(**params)

        with monkeypatch.context() as patch:
            patch.setattr(gateway, "create_transfer", refusing)
            yield

    return refusing_one


def after_the_review_window(work: Milestone) -> datetime:
    assert work.review_deadline is not None  # set when the work is submitted
    return work.review_deadline + timedelta(seconds=1)


def test_the_sweep_approves_every_milestone_past_its_review_window_and_counts_each(client, rubric, stripe_settings):
    made = engagement()
    first, second = submitted(stripe_settings, client, made), submitted(stripe_settings, client, made)
    waiting = submitted(stripe_settings, client, made)
    Milestone.objects.filter(pk=waiting.pk).update(review_deadline=after_the_review_window(second) + timedelta(days=1))

    counts = services.payments_sweep(now=after_the_review_window(second))

    assert (counts["auto_approved"], counts["released"]) == (2, 0)  # approved and paid at once: nothing left
    statuses = dict(Milestone.objects.filter(engagement=made).values_list("pk", "status"))
    assert statuses == {first.pk: "released", second.pk: "released", waiting.pk: "submitted"}


def test_a_refused_approval_does_not_stop_the_sweep_approving_the_next(
    client, rubric, stripe_settings, transfers_refused_for
):
    made = engagement()
    first, second = submitted(stripe_settings, client, made), submitted(stripe_settings, client, made)

    with transfers_refused_for(first.pk):
        counts = services.payments_sweep(now=after_the_review_window(second))

    assert counts["auto_approved"] == 1
    assert Milestone.objects.get(pk=first.pk).status == "submitted"  # given back; the next sweep tries again
    assert Milestone.objects.get(pk=second.pk).status == "released"


def test_the_sweep_never_approves_a_milestone_that_is_not_submitted(client, rubric, stripe_settings):
    made = engagement()
    released = submitted(stripe_settings, client, made)
    services.milestone_approve(client=made.client, milestone_id=released.pk)
    disputed = submitted(stripe_settings, client, made)
    services.milestone_dispute(user=made.client, milestone_id=disputed.pk, reason="not as agreed")

    counts = services.payments_sweep(now=after_the_review_window(disputed))

    assert counts["auto_approved"] == 0
    assert Milestone.objects.get(pk=disputed.pk).status == "disputed"


def test_the_sweep_releases_every_approved_milestone_once_the_engineer_can_be_paid(
    client, rubric, stripe_settings, transfers_refused_for
):
    made = engagement(onboarded=False)
    first, second, third = (submitted(stripe_settings, client, made) for _ in range(3))
    for work in (first, second, third):
        assert services.milestone_approve(client=made.client, milestone_id=work.pk).status == "approved"
    assert services.payments_sweep()["released"] == 0  # payouts not enabled yet: they wait, approved

    onboard(made.engineer)
    with transfers_refused_for(first.pk):
        refused_first = services.payments_sweep()
    counts = services.payments_sweep()

    assert refused_first["released"] == 2  # the first's refusal did not stop the others
    assert counts["released"] == 1
    statuses = set(Milestone.objects.filter(engagement=made).values_list("status", flat=True))
    assert statuses == {"released"}


def test_releasing_pending_work_leaves_a_milestone_that_is_not_approved_alone(client, rubric, stripe_settings):
    made = engagement()
    work = submitted(stripe_settings, client, made)

    left = services.milestone_release_pending(milestone_id=work.pk)

    assert (left.status, left.transfer_id) == ("submitted", "")
    assert stripe_settings.double.objects["transfers"] == {}


def test_a_refused_pending_release_goes_back_to_approved(client, rubric, stripe_settings, transfers_refused_for, staff):
    made = engagement(onboarded=False)
    work = submitted(stripe_settings, client, made)
    services.milestone_approve(client=made.client, milestone_id=work.pk)
    onboard(made.engineer)

    with transfers_refused_for(work.pk), pytest.raises(PaymentRefused):
        services.milestone_release_pending(milestone_id=work.pk)

    back = Milestone.objects.get(pk=work.pk)
    assert (back.status, back.step_attempt, back.step_claimed_at) == ("approved", 1, None)
    assert back.approved_at is not None
    note = MilestoneEvent.objects.filter(milestone=work).latest("pk").note
    assert note == "Stripe refused the Transfer: insufficient_funds"
    alerted = list(Notification.objects.filter(event="milestone.release_refused").values_list("user_id", "payload"))
    assert alerted == [(staff.pk, {"milestone_id": work.pk, "reason": note})]


def test_the_sweep_finishes_a_step_that_went_stale_by_the_time_it_is_given(client, rubric, stripe_settings, settings):
    made = engagement()
    left = release_times_out(stripe_settings, client, made, settings)

    counts = services.payments_sweep(now=after_a_stale_step())

    assert counts["resumed"] == 1
    assert Milestone.objects.get(pk=left.pk).status == "released"


def test_a_stuck_step_tells_staff_what_failed_at_its_first_failure(
    client, rubric, stripe_settings, settings, staff, caplog
):
    made = engagement()
    left = release_times_out(stripe_settings, client, made, settings)
    Milestone.objects.filter(pk=left.pk).update(step_amount_minor=1)  # the replay's key now conflicts at Stripe

    with caplog.at_level(logging.WARNING, logger="payments.services.milestones"):
        services.steps_resume(now=after_a_stale_step())
    records = list(caplog.records)
    alerted = list(Notification.objects.filter(event="payment_step.stuck").values_list("user_id", "payload"))
    services.steps_resume(now=after_a_stale_step() + timedelta(minutes=1))

    assert len(alerted) == 1
    user_id, payload = alerted[0]
    assert user_id == staff.pk
    assert (payload["milestone_id"], payload["error"]) == (left.pk, "PaymentsUnavailable")
    assert payload["detail"]
    warned = [record for record in records if record.getMessage() == "step.resume_failed"]
    assert [(record.milestone_id, record.error) for record in warned] == [(left.pk, "PaymentsUnavailable")]
    assert Notification.objects.filter(event="payment_step.stuck").count() == 1  # not again a minute later
    assert Milestone.objects.get(pk=left.pk).step_failures == 2  # though the sweep did try again


def test_a_stuck_steps_alert_carries_the_first_500_characters_of_what_failed(
    client, rubric, stripe_settings, settings, staff, monkeypatch
):
    made = engagement()
    left = release_times_out(stripe_settings, client, made, settings)
    long_reason = "Stripe answered nothing useful. " * 20  # 640 characters

    async def unavailable(**params):
        raise PaymentsUnavailable(long_reason)

    monkeypatch.setattr(gateway, "create_transfer", unavailable)
    services.steps_resume(now=after_a_stale_step())

    (payload,) = Notification.objects.filter(event="payment_step.stuck").values_list("payload", flat=True)
    assert payload == {"milestone_id": left.pk, "error": "PaymentsUnavailable", "detail": long_reason[:500]}


def test_a_stale_release_stripe_refuses_goes_back_to_approved_not_to_review(
    client, rubric, stripe_settings, settings, transfers_refused_for
):
    made = engagement()
    left = release_times_out(stripe_settings, client, made, settings)
    Milestone.objects.filter(pk=left.pk).update(transfer_id="")  # as if the first Transfer was never made

    with transfers_refused_for(left.pk):
        counts = services.steps_resume(now=after_a_stale_step())

    assert counts == {"resumed": 0, "failed": 1}
    back = Milestone.objects.get(pk=left.pk)
    assert (back.status, back.step_attempt) == ("approved", 1)  # the client's approval stands
