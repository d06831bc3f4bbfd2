from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts import services


@shared_task(
    name="accounts.tasks.user_send_welcome",
    autoretry_for=(OSError,),
    max_retries=5,
    retry_backoff=True,
    recovered_by="accounts.welcome-mails-sweep",
)
def user_send_welcome(user_id: int) -> bool:
    return services.user_send_welcome(user_id=user_id)


@shared_task(name="accounts.tasks.welcome_mails_sweep", soft_time_limit=50, time_limit=58)
def welcome_mails_sweep() -> int:
    """Send the welcome mails whose task never ran (the broker was down when the user registered)."""
    return services.welcome_mails_sweep()


@shared_task(name="accounts.tasks.tokens_purge_revoked")
def tokens_purge_revoked() -> int:
    return services.tokens_purge_revoked(older_than=timedelta(days=settings.API_TOKEN_PURGE_AFTER_DAYS))


@shared_task(name="accounts.tasks.sessions_clear_expired")
def sessions_clear_expired() -> int:
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
