from celery import shared_task

from vetting import services


@shared_task(name="vetting.tasks.expiry_reminders")
def expiry_reminders() -> int:
    """Remind engineers whose vetting expires within the renewal window (once each)."""
    return services.vetting_expiry_reminders()
