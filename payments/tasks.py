from typing import Any

from celery import shared_task

from payments import services


@shared_task(
    name="payments.tasks.process_stripe_event",
    recovered_by="payments.sweep",  # an event whose first task was lost is due a minute after it arrived
)
def process_stripe_event(event_id: int) -> bool:
    """Process one stored event. A failure is retried from the database by the sweep (never given up)."""
    return services.stripe_event_process(event_id=event_id)


@shared_task(name="payments.tasks.sweep")
def sweep() -> dict[str, Any]:
    """Finish abandoned Stripe steps, approve and release (or charge and pay) what is due, retry due events."""
    return {
        **services.payments_sweep(),
        "timesheets": services.timesheets_sweep(),
        "events": services.stripe_events_retry(),
    }


@shared_task(name="payments.tasks.timesheets_close")
def timesheets_close() -> dict[str, int]:
    """Send every week past its edit grace to the client for review (weeks end Monday 00:00 UTC)."""
    return services.timesheets_close()


@shared_task(name="payments.tasks.reconcile")
def reconcile() -> dict[str, Any]:
    """Fetch the events Stripe could not deliver, catch up with what Stripe did, compare the books with Stripe."""
    missing = services.stripe_events_reconcile()
    caught_up = services.catch_up_with_stripe()
    return {"missing_events": missing, "caught_up": caught_up, "differences": services.ledger_compare_with_stripe()}
