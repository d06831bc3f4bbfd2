"""An email goes through a real SMTP server (aiosmtpd on a free port) with its headers and both parts."""

import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from marketplace.models import EmailOutbox, OutboxStatus
from marketplace.notifications import notify_user, outbox
from tests.factories import ClientFactory
from tests.notifications.conftest import PAYLOAD

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_email_sent_through_smtp_has_the_unsubscribe_headers_and_both_parts(settings):
    inbox, port = Inbox(), free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()  # in a thread of its own
    try:
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5},
            }
        }
        user = ClientFactory.create(full_name="Ada Client")
        row = EmailOutbox.objects.get(
            notification=notify_user(
                user_id=user.pk, event="milestone.changed", payload={**PAYLOAD, "status": "funded"}
            )
        )

        assert outbox.email_send(outbox_id=row.pk) == "sent"
        assert outbox.email_send(outbox_id=row.pk) == "done"
    finally:
        server.stop()

    assert len(inbox.received) == 1
    mail_from, recipients, raw = inbox.received[0]
    assert (mail_from, recipients) == ("no-reply@vetted.test", [user.email])
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Milestone “Async payments service”: funded"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/email/unsubscribe/")
    assert message["List-Unsubscribe"].endswith(">")
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "Hello Ada Client" in text.get_content()
    assert "$1,500.00" in text.get_content()
    assert "<strong>funded</strong>" in html.get_content()
    assert "/email/unsubscribe/" in html.get_content()
    row.refresh_from_db()
    assert row.status == OutboxStatus.SENT
