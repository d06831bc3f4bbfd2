from datetime import timedelta

from celery import shared_task
from django.conf import settings

from marketplace import idempotency
from marketplace.notifications import log


@shared_task(name="marketplace.tasks.notifications_sweep", soft_time_limit=25, time_limit=28)
def notifications_sweep() -> int:
    """Number and push notifications whose publish was lost (a process died right after commit)."""
    return log.sweep_unnumbered()


@shared_task(name="marketplace.tasks.notifications_prune")
def notifications_prune() -> int:
    return log.prune(older_than=timedelta(days=settings.NOTIFICATIONS_RETENTION_DAYS))


@shared_task(name="marketplace.tasks.idempotency_records_purge")
def idempotency_records_purge() -> int:
    """Delete Idempotency-Key records past IDEMPOTENCY_KEY_TTL_SECONDS (their keys are forgotten already)."""
    return idempotency.idempotency_records_purge()
