from datetime import timedelta

from celery import shared_task
from django.conf import settings

from marketplace import idempotency
from marketplace.notifications import log, outbox, reminders


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


@shared_task(
    name="marketplace.tasks.email_send",
    autoretry_for=(OSError,),
    # Bounded, with backoff (1, 2, 4, 8 s ... at most 60 s): under the broker's visibility timeout.
    max_retries=settings.EMAIL_SEND_MAX_ATTEMPTS - 1,
    retry_backoff=True,
    retry_backoff_max=60,
    soft_time_limit=50,
    time_limit=58,
    recovered_by="marketplace.email-outbox-sweep",
)
def email_send(outbox_id: int) -> str:
    return outbox.email_send(outbox_id=outbox_id)


@shared_task(name="marketplace.tasks.email_outbox_sweep", soft_time_limit=50, time_limit=58)
def email_outbox_sweep() -> dict[str, int]:
    """Send due unread-chat emails, and emails whose task was lost or whose sender died."""
    return outbox.outbox_sweep()


@shared_task(name="marketplace.tasks.email_daily_digest")
def email_daily_digest() -> int:
    return outbox.daily_digests()


@shared_task(name="marketplace.tasks.email_reminders", soft_time_limit=50, time_limit=58)
def email_reminders() -> dict[str, int]:
    """Remind people of what is about to lapse (docs/notifications.md, "Reminders"); each subject once."""
    return reminders.reminders_send()
