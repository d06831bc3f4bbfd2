from typing import Any

from celery import shared_task

from payments import services


@shared_task(
    name="payments.tasks.process_stripe_event",
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def process_stripe_event(event_id: int) -> bool:
    return services.stripe_event_process(event_id=event_id)


@shared_task(name="payments.tasks.sweep")
def sweep() -> dict[str, Any]:
    return services.payments_sweep()


@shared_task(name="payments.tasks.reconcile")
def reconcile() -> dict[str, Any]:
    """Fetch the events Stripe could not deliver, then compare the books with Stripe (differences are logged)."""
    missing = services.stripe_events_reconcile()
    return {"missing_events": missing, "differences": services.ledger_compare_with_stripe()}
