"""A task sent after commit: a broker that cannot take it is never the caller's error, and a sweep re-drives it."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts import services as accounts_services
from accounts.models import Role, User
from marketplace import metrics
from marketplace.celery import VettedTask, app
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Sent only on commit by the code that needs them; everything else is a beat entry and runs again on its next tick.
SENT_ON_COMMIT = {
    "hiring_requests.tasks.match_request",
    "payments.tasks.process_stripe_event",
    "accounts.tasks.user_send_welcome",
    "marketplace.tasks.email_send",
}


def _ours() -> dict[str, VettedTask]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_is_either_on_the_beat_schedule_or_names_the_sweep_that_recovers_it():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    tasks = _ours()
    assert set(tasks) == scheduled | SENT_ON_COMMIT
    for name in SENT_ON_COMMIT:
        recovered_by = tasks[name].recovered_by
        assert recovered_by in settings.CELERY_BEAT_SCHEDULE, name


def _failures(task: str) -> float:
    return float(metrics.task_publish_failures.labels(task=task)._value.get())


def test_registering_while_the_broker_is_down_succeeds_and_the_sweep_sends_the_welcome(monkeypatch, caplog):
    def broker_down(self, *args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(VettedTask, "apply_async", broker_down)
    before = _failures("accounts.tasks.user_send_welcome")
    with caplog.at_level(logging.ERROR, logger="marketplace.celery"):
        user = accounts_services.user_register(
            email="late@example.com", password="a long pass phrase", role=Role.CLIENT
        )

    assert User.objects.filter(pk=user.pk, welcome_sent_at=None).exists()
    assert _failures("accounts.tasks.user_send_welcome") == before + 1
    (record,) = [r for r in caplog.records if r.getMessage() == "task.publish_failed"]
    assert record.recovered_by == "accounts.welcome-mails-sweep"

    # Too early: the task and its retries may still be on their way.
    assert accounts_services.welcome_mails_sweep() == 0
    later = timezone.now() + accounts_services.WELCOME_SWEEP_AFTER + timedelta(seconds=1)
    assert accounts_services.welcome_mails_sweep(now=later) == 1
    assert [m.to for m in mail.outbox] == [["late@example.com"]]
    assert accounts_services.welcome_mails_sweep(now=later) == 0  # once
    assert len(mail.outbox) == 1


def test_the_welcome_sweep_leaves_staff_and_old_accounts_alone():
    StaffFactory.create()
    old = User.objects.create_user("old@example.com", "a long pass phrase", role=Role.ENGINEER)
    User.objects.filter(pk=old.pk).update(date_joined=timezone.now() - timedelta(days=30))
    later = timezone.now() + timedelta(minutes=5)

    assert accounts_services.welcome_mails_sweep(now=later) == 0
    assert mail.outbox == []
    assert User.objects.filter(pk=old.pk, welcome_sent_at=None).exists()
