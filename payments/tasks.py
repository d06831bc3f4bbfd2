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
def reconcile() -> int:
    return services.stripe_events_reconcile()
