"""Unread chat is emailed once, CHAT_EMAIL_DIGEST_MINUTES later, with only what is still unread."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from conversations import services as chat
from marketplace.models import EmailOutbox, OutboxStatus
from marketplace.notifications import outbox
from marketplace.notifications.presence import presence_seen
from tests.conversations.conftest import conversation_between
from tests.factories import ClientFactory, EmailPreferenceFactory, vetted_engineer
from tests.notifications.conftest import html_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def talk():
    client, engineer = ClientFactory.create(), vetted_engineer()
    return conversation_between(client, engineer)


def say(conversation, sender, body):
    message, _ = chat.message_send(sender=sender, conversation_id=conversation.pk, body=body, client_msg_id=None)
    return message


def later(settings, minutes=1):
    return time_machine.travel(
        timezone.now() + timedelta(minutes=settings.CHAT_EMAIL_DIGEST_MINUTES + minutes), tick=False
    )


def test_the_digest_includes_only_the_messages_still_unread(settings, talk):
    first = say(talk, talk.client, "Hello, are you free on Monday?")
    say(talk, talk.client, "We could start with the webhook part.")
    say(talk, talk.client, "Also: the budget is fine.")
    chat.conversation_mark_read(user=talk.engineer, conversation_id=talk.pk, up_to_seq=first.seq + 1)
    row = EmailOutbox.objects.get(user=talk.engineer, kind="message.created")

    assert outbox.email_send(outbox_id=row.pk) == "not_due"
    with later(settings):
        assert outbox.email_send(outbox_id=row.pk) == "sent"
        assert outbox.email_send(outbox_id=row.pk) == "done"

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [talk.engineer.email]
    assert "Also: the budget is fine." in sent.body
    assert "Also: the budget is fine." in html_of(sent)
    assert "Hello, are you free" not in sent.body
    assert "webhook part" not in sent.body
    assert "List-Unsubscribe" in sent.extra_headers


def test_nothing_is_emailed_when_everything_was_read(settings, talk):
    message = say(talk, talk.client, "Hello")
    chat.conversation_mark_read(user=talk.engineer, conversation_id=talk.pk, up_to_seq=message.seq)
    row = EmailOutbox.objects.get(user=talk.engineer, kind="message.created")

    with later(settings):
        assert outbox.email_send(outbox_id=row.pk) == "skipped"

    assert mail.outbox == []
    row.refresh_from_db()
    assert row.status == OutboxStatus.SKIPPED


def test_nothing_is_emailed_when_the_user_was_online_meanwhile(settings, talk):
    say(talk, talk.client, "Hello")
    row = EmailOutbox.objects.get(user=talk.engineer, kind="message.created")

    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False):
        presence_seen(talk.engineer.pk)
    with later(settings):
        assert outbox.email_send(outbox_id=row.pk) == "skipped"

    assert mail.outbox == []


def test_a_user_online_before_the_message_arrived_is_still_emailed(settings, talk):
    presence_seen(talk.engineer.pk)
    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False):
        say(talk, talk.client, "Hello")
    row = EmailOutbox.objects.get(user=talk.engineer, kind="message.created")

    with later(settings, minutes=2):
        assert outbox.email_send(outbox_id=row.pk) == "sent"


def test_the_sweep_sends_due_chat_once_per_user(settings, talk, monkeypatch):
    say(talk, talk.client, "Hello")
    enqueued: list[int] = []
    monkeypatch.setattr("marketplace.tasks.email_send.apply_async", lambda args: enqueued.append(args[0]))

    assert outbox.outbox_sweep()["chat"] == 0
    with later(settings):
        assert outbox.outbox_sweep()["chat"] == 1
        for outbox_id in enqueued * 2:
            outbox.email_send(outbox_id=outbox_id)

    # The other rows it sent are the invitation's and the shortlist's, whose tasks never ran here.
    assert [m.subject for m in mail.outbox].count("Unread messages on Vetted") == 1


def test_chat_turned_off_is_never_emailed(settings, talk):
    EmailPreferenceFactory.create(user=talk.engineer, kind="message.created", delivery="never")
    say(talk, talk.client, "Hello")
    row = EmailOutbox.objects.get(user=talk.engineer, kind="message.created")

    with later(settings):
        outbox.email_send(outbox_id=row.pk)

    assert mail.outbox == []
