from typing import Any

from django.core.mail import EmailMessage, EmailMultiAlternatives

from accounts.models import User
from marketplace.notifications.kinds import CLIENT, ENGINEER, STAFF, Kind
from tests.factories import ClientFactory, EngineerFactory, StaffFactory

# Every field any email template reads, so each kind renders whole.
PAYLOAD: dict[str, Any] = {
    "request_id": 7,
    "invitation_id": 11,
    "engagement_id": 5,
    "milestone_id": 3,
    "timesheet_id": 9,
    "application_id": 4,
    "record_id": 2,
    "token_id": 8,
    "title": "Async payments service",
    "expires_at": "2026-11-02T10:00:00+00:00",
    "deadline": "2026-11-02T17:00:00+00:00",
    "review_deadline": "2026-11-07T00:00:00+00:00",
    "reason": "the client cancelled",
    "step": 1,
    "change": "a wider time zone",
    "status": "submitted",
    "amount_minor": 150_000,
    "currency": "usd",
    "week_start": "2026-10-26",
    "minutes": 600,
    "hours": 20,
    "applies_from": "2026-11-02",
    "payouts_enabled": True,
    "name": "ci",
    "prefix": "vt_abcdefg",
    "shortlist": [{"engineer_id": 1, "score_bp": 8_000}],
}


def recipient(kind: Kind) -> User:
    """A user the kind is for."""
    if ENGINEER in kind.audience:
        return EngineerFactory.create()
    if CLIENT in kind.audience:
        return ClientFactory.create()
    if STAFF in kind.audience:
        return StaffFactory.create()
    return ClientFactory.create()


def html_of(message: EmailMessage) -> str:
    """The HTML part of a sent email."""
    assert isinstance(message, EmailMultiAlternatives)
    content, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    return str(content)
