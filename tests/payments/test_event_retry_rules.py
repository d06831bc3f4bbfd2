"""The rules of the stored-event sweep, in process (payments.services.webhooks; docs/payments.md, "Webhooks").

- A failed event is retried after a backoff of 10 s doubling per failure, capped at an hour, with
  jitter over the upper half (`retry_delay`).
- An event is due when its backoff has passed, or, never tried, a minute after it arrived (its first
  task was lost); processed events never are; the oldest go first (`stripe_events_due`).
- The sweep counts what it processed and what failed, and tells staff once of each event unprocessed
  for STRIPE_EVENT_STUCK_SECONDS (`stripe_events_retry`, `stripe_events_stuck`).
- A dispute on a charge no milestone knows is kept and staff are told (`_dispute_record`).

Every moment is given as `now`, hours ahead of the clock, so a rule that read the clock instead would fail.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.models import Notification
from payments.models import Dispute, StripeEvent
from payments.services import webhooks

pytestmark = pytest.mark.django_db

FAILS = "vetted.test_fails"
IGNORED = "customer.created"  # stored and processed with no handler


@pytest.fixture
def failing_handler(monkeypatch):
    async def fail(obj):
        raise RuntimeError(f"cannot apply {obj['id']}")

    monkeypatch.setitem(webhooks.HANDLERS, FAILS, fail)


def stored(stripe_id: str, *, received, kind: str = IGNORED, **fields) -> StripeEvent:
    payload = {"id": stripe_id, "type": kind, "data": {"object": {"id": f"obj_{stripe_id}"}}}
    return StripeEvent.objects.create(stripe_id=stripe_id, type=kind, payload=payload, received_at=received, **fields)


def staff_alerts(staff, event: str) -> list[dict[str, object]]:
    return list(Notification.objects.filter(user=staff, event=event).order_by("pk").values_list("payload", flat=True))


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [(0, 10), (1, 20), (2, 40), (3, 80), (8, 2_560), (9, 3_600), (25, 3_600)],
)
def test_the_backoff_doubles_from_ten_seconds_up_to_an_hour_with_jitter_over_its_upper_half(
    monkeypatch, attempts, ceiling
):
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr("payments.services.webhooks.random.uniform", uniform)

    assert webhooks.retry_delay(attempts) == timedelta(seconds=ceiling)
    assert bounds == [(ceiling / 2, ceiling)]


def test_due_are_the_backoffs_passed_and_the_lost_first_tasks_oldest_first():
    now = timezone.now() + timedelta(hours=3)
    backed_off = stored("evt_backed_off", received=now - timedelta(minutes=30), next_attempt_at=now)
    lost = stored("evt_lost", received=now - timedelta(seconds=90))
    stored("evt_waiting", received=now - timedelta(minutes=40), next_attempt_at=now + timedelta(seconds=1))
    stored("evt_just_in", received=now - timedelta(seconds=30))
    stored("evt_done", received=now - timedelta(hours=2), processed_at=now - timedelta(hours=2))

    assert webhooks.stripe_events_due(now=now) == [backed_off.pk, lost.pk]
    assert webhooks.stripe_events_due(now=now, limit=1) == [backed_off.pk]


def test_the_sweep_counts_each_outcome_and_tells_staff_once_of_a_stuck_event(staff, failing_handler):
    now = timezone.now() + timedelta(hours=3)
    stuck_since = now - timedelta(seconds=settings.STRIPE_EVENT_STUCK_SECONDS + 60)
    good = [stored(f"evt_good_{n}", received=now - timedelta(minutes=5)) for n in range(2)]
    bad = stored("evt_bad", received=stuck_since, kind=FAILS, attempts=4, last_error="RuntimeError('earlier')")

    first = webhooks.stripe_events_retry(now=now)
    second = webhooks.stripe_events_retry(now=now + timedelta(hours=2))

    assert first == {"processed": 2, "failed": 1, "stuck": 1}
    assert second == {"processed": 0, "failed": 1, "stuck": 0}  # still failing; staff were told already
    assert all(StripeEvent.objects.get(pk=e.pk).processed_at is not None for e in good)
    failed = StripeEvent.objects.get(pk=bad.pk)
    assert (failed.processed_at, failed.attempts) == (None, 6)
    assert staff_alerts(staff, "stripe_event.stuck") == [
        {"event": "evt_bad", "type": FAILS, "attempts": 5, "error": "RuntimeError('cannot apply obj_evt_bad')"}
    ]


def test_stuck_is_unprocessed_for_longer_than_the_setting():
    now = timezone.now() + timedelta(hours=3)
    limit = timedelta(seconds=settings.STRIPE_EVENT_STUCK_SECONDS)
    old = stored("evt_old", received=now - limit - timedelta(seconds=1))
    stored("evt_recent", received=now - limit + timedelta(seconds=60))
    stored("evt_old_but_done", received=now - 2 * limit, processed_at=now - 2 * limit)

    assert list(webhooks.stripe_events_stuck(now=now)) == [old]


def test_a_dispute_on_a_charge_no_milestone_knows_is_kept_and_staff_are_told_once(staff):
    def record(status: str) -> Dispute | None:
        with transaction.atomic():
            return webhooks._dispute_record(
                dispute_id="dp_unmatched",
                charge_id="ch_unknown",
                amount=5_000,
                currency="usd",
                reason="fraudulent",
                status=status,
            )

    kept = record("needs_response")
    record("under_review")  # Stripe's next update of the same dispute

    assert kept is not None
    assert kept.milestone is None
    assert Dispute.objects.get(stripe_id="dp_unmatched").charge_id == "ch_unknown"
    assert staff_alerts(staff, "dispute.unmatched") == [{"dispute_id": "dp_unmatched", "charge_id": "ch_unknown"}]


def test_a_sweep_takes_a_hundred_events_at_most():
    now = timezone.now() + timedelta(hours=3)
    StripeEvent.objects.bulk_create(
        StripeEvent(stripe_id=f"evt_many_{n}", type=IGNORED, payload={}, received_at=now - timedelta(minutes=5))
        for n in range(101)
    )

    assert len(webhooks.stripe_events_due(now=now)) == 100
