"""The outbox: each notification emailed at most once, as the user chose, with retries that give the claim back."""

from datetime import timedelta
from email import message_from_bytes
from smtplib import SMTPServerDisconnected

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from marketplace.models import EmailOutbox, OutboxStatus
from marketplace.notifications import notify_user, outbox
from marketplace.notifications.kinds import KINDS
from tests.factories import ClientFactory, EmailPreferenceFactory
from tests.notifications.conftest import PAYLOAD, html_of, recipient

pytestmark = pytest.mark.django_db

EMAILED_AT_ONCE = sorted(name for name, kind in KINDS.items() if not kind.chat)


def row_of(notification) -> EmailOutbox:
    return EmailOutbox.objects.get(notification=notification)


@pytest.mark.parametrize("name", EMAILED_AT_ONCE)
def test_each_kind_is_emailed_once_when_its_task_runs_twice(name):
    kind = KINDS[name]
    user = recipient(kind)
    row = row_of(notify_user(user_id=user.pk, event=name, payload=PAYLOAD))

    first = outbox.email_send(outbox_id=row.pk)
    second = outbox.email_send(outbox_id=row.pk)

    assert (first, second) == ("sent", "done")
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [user.email]
    assert sent.subject
    assert "{" not in sent.subject
    assert "<p>" in html_of(sent)
    assert ("List-Unsubscribe" in sent.extra_headers) is not kind.always_essential
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)


def test_money_in_an_email_is_formatted_as_everywhere_else():
    user = ClientFactory.create()
    payload = {
        **PAYLOAD,
        "status": "charge_failed",
        "amount_minor": 150_000,
        "currency": "usd",
        "failure_code": "card_declined",
        "fix": {"replace_card": "/x", "pay_now": "/y"},
    }
    row = row_of(notify_user(user_id=user.pk, event="timesheet.changed", payload=payload))

    outbox.email_send(outbox_id=row.pk)

    sent = mail.outbox[0]
    assert "$1,500.00" in sent.body
    assert "$1,500.00" in html_of(sent)
    assert sent.subject == "Payment failed for the week of 2026-10-26"


def test_a_user_who_chose_never_gets_no_email():
    user = ClientFactory.create()
    EmailPreferenceFactory.create(user=user, kind="shortlist.changed", delivery="never")
    row = row_of(notify_user(user_id=user.pk, event="shortlist.changed", payload=PAYLOAD))

    assert outbox.email_send(outbox_id=row.pk) == "skipped"

    assert mail.outbox == []
    row.refresh_from_db()
    assert row.status == OutboxStatus.SKIPPED


def test_essential_email_comes_even_to_a_user_who_chose_never():
    user = ClientFactory.create()
    EmailPreferenceFactory.create(user=user, kind="timesheet.changed", delivery="never")
    failed = row_of(
        notify_user(user_id=user.pk, event="timesheet.changed", payload={**PAYLOAD, "status": "charge_failed"})
    )
    submitted = row_of(notify_user(user_id=user.pk, event="timesheet.changed", payload=PAYLOAD))

    assert outbox.email_send(outbox_id=failed.pk) == "sent"
    assert outbox.email_send(outbox_id=submitted.pk) == "skipped"

    assert len(mail.outbox) == 1
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers


def test_daily_kinds_wait_for_the_digest_which_sends_them_once_together():
    user = ClientFactory.create()
    EmailPreferenceFactory.create(user=user, kind="shortlist.changed", delivery="daily")
    EmailPreferenceFactory.create(user=user, kind="request.widening_proposed", delivery="daily")
    rows = [
        row_of(notify_user(user_id=user.pk, event="shortlist.changed", payload=PAYLOAD)),
        row_of(notify_user(user_id=user.pk, event="request.widening_proposed", payload=PAYLOAD)),
    ]
    immediate = row_of(notify_user(user_id=user.pk, event="request.deadline_extended", payload=PAYLOAD))

    assert [outbox.email_send(outbox_id=row.pk) for row in rows] == ["digest", "digest"]
    assert outbox.email_send(outbox_id=immediate.pk) == "sent"
    assert outbox.daily_digests() == 1
    assert outbox.daily_digests() == 0

    assert [m.subject for m in mail.outbox] == [mail.outbox[0].subject, "Your day on Vetted"]
    digest = mail.outbox[1]
    assert "Your shortlist changed" in digest.body
    assert "Widen your request to find engineers" in digest.body
    assert "deadline was extended" not in digest.body
    assert "List-Unsubscribe" in digest.extra_headers
    assert set(EmailOutbox.objects.filter(user=user).values_list("status", flat=True)) == {OutboxStatus.SENT}


def test_a_failed_send_gives_the_claim_back_and_the_retry_sends_once(monkeypatch):
    user = ClientFactory.create()
    row = row_of(notify_user(user_id=user.pk, event="shortlist.changed", payload=PAYLOAD))
    real_send = mail.EmailMultiAlternatives.send

    def down(self, fail_silently=False):
        raise SMTPServerDisconnected("connection closed")

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", down)
    with pytest.raises(SMTPServerDisconnected):
        outbox.email_send(outbox_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.claim) == (OutboxStatus.PENDING, 1, "")

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", real_send)
    assert outbox.email_send(outbox_id=row.pk) == "sent"
    assert outbox.email_send(outbox_id=row.pk) == "done"
    assert len(mail.outbox) == 1


def test_retries_are_bounded_then_the_row_is_marked_failed(monkeypatch, settings):
    settings.EMAIL_SEND_MAX_ATTEMPTS = 2
    user = ClientFactory.create()
    row = row_of(notify_user(user_id=user.pk, event="shortlist.changed", payload=PAYLOAD))

    def down(self, fail_silently=False):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", down)
    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            outbox.email_send(outbox_id=row.pk)

    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 2)
    assert "no mail server" in row.last_error


def test_a_claim_held_by_a_worker_that_died_is_sent_by_the_sweep(monkeypatch):
    user = ClientFactory.create()
    row = row_of(notify_user(user_id=user.pk, event="shortlist.changed", payload=PAYLOAD))
    EmailOutbox.objects.filter(pk=row.pk).update(status=OutboxStatus.SENDING, claim="dead", claimed_at=timezone.now())
    enqueued: list[int] = []
    monkeypatch.setattr("marketplace.tasks.email_send.apply_async", lambda args: enqueued.append(args[0]))

    assert outbox.outbox_sweep()["stale"] == 0
    with time_machine.travel(timezone.now() + outbox.STALE_CLAIM + timedelta(seconds=1), tick=False):
        counts = outbox.outbox_sweep()
        for outbox_id in enqueued:
            outbox.email_send(outbox_id=outbox_id)

    assert counts == {"stale": 1, "chat": 0, "lost": 1}
    assert len(mail.outbox) == 1


def test_the_email_task_is_sent_only_when_the_notification_commits(django_capture_on_commit_callbacks, monkeypatch):
    user = ClientFactory.create()
    sent: list[int] = []
    monkeypatch.setattr("marketplace.tasks.email_send.apply_async", lambda args, kwargs=None: sent.append(args[0]))

    with django_capture_on_commit_callbacks(execute=True):
        row = row_of(notify_user(user_id=user.pk, event="shortlist.changed", payload=PAYLOAD))

    assert sent == [row.pk]


def test_an_inactive_user_is_not_emailed():
    user = ClientFactory.create(is_active=False)
    row = row_of(notify_user(user_id=user.pk, event="shortlist.changed", payload=PAYLOAD))

    assert outbox.email_send(outbox_id=row.pk) == "skipped"
    assert mail.outbox == []


def test_both_parts_and_the_headers_are_in_the_message_as_sent():
    user = ClientFactory.create()
    row = row_of(notify_user(user_id=user.pk, event="invitation.expired", payload=PAYLOAD))
    outbox.email_send(outbox_id=row.pk)

    parsed = message_from_bytes(mail.outbox[0].message().as_bytes())

    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/email/unsubscribe/")
    assert [part.get_content_type() for part in parsed.walk() if not part.is_multipart()] == [
        "text/plain",
        "text/html",
    ]


@pytest.mark.parametrize(
    ("event", "status", "emailed"),
    [
        ("milestone.changed", "funding", False),  # a Stripe step the system finishes within seconds
        ("milestone.changed", "releasing", False),
        ("milestone.changed", "awaiting_funding", False),  # the client is on the page, paying
        ("milestone.changed", "changes_requested", True),
        ("milestone.changed", "released", True),
        ("timesheet.changed", "charging", False),
        ("timesheet.changed", "charge_failed", True),
        ("timesheet.changed", "paid", True),
    ],
)
def test_steps_the_system_takes_by_itself_are_logged_but_not_emailed(event, status, emailed):
    user = ClientFactory.create()

    notification = notify_user(user_id=user.pk, event=event, payload={**PAYLOAD, "status": status})

    assert notification.payload["status"] == status  # in the notification log either way
    assert EmailOutbox.objects.filter(notification=notification).exists() is emailed


def test_a_status_in_a_subject_reads_as_words():
    user = ClientFactory.create()
    row = row_of(
        notify_user(user_id=user.pk, event="milestone.changed", payload={**PAYLOAD, "status": "changes_requested"})
    )

    outbox.email_send(outbox_id=row.pk)

    assert mail.outbox[0].subject == "Milestone “Async payments service”: changes requested"
    assert "is now changes requested" in mail.outbox[0].body
