"""Reminders: a beat job asks each registered reminder what is due and notifies once per subject.

A `Reminder` names its notification kind (in `kinds`) and a `due(now)` that yields
`Due(subject_id, user_ids, payload)` for every subject in its window. A subject is
reminded once: a `ReminderSent` row (unique per kind and subject) is written in the
same transaction as the notifications, so two overlapping runs remind once.

Adding one (the review window closing within 24 hours, say) is a `Kind` registered with
`kinds.register` and a `Reminder` registered here with `register`, both from the owning
app's `AppConfig.ready`.

The staff's "request at risk of missing the 8-hour promise" is the hiring clock's own
`request.at_risk` notification (hiring_requests.services.clock_sweep, once per request),
emailed like every kind.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from hiring_requests.selectors import invitations_expiring
from marketplace.models import ReminderSent
from marketplace.notifications.kinds import KINDS
from marketplace.notifications.log import notify_user
from payments.selectors import timesheets_awaiting_review

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Due:
    subject_id: int
    user_ids: list[int]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reminder:
    kind: str
    due: Callable[[datetime], Iterable[Due]]


def _invitations_expiring(now: datetime) -> Iterable[Due]:
    within = timedelta(minutes=settings.INVITATION_EXPIRY_REMINDER_MINUTES)
    for invitation in invitations_expiring(now=now, within=within):
        yield Due(
            invitation.pk,
            [invitation.engineer_id],
            {
                "invitation_id": invitation.pk,
                "request_id": invitation.request_id,
                "title": invitation.request.title,
                "expires_at": invitation.expires_at.isoformat(),
            },
        )


def _timesheets_awaiting_approval(now: datetime) -> Iterable[Due]:
    within = timedelta(hours=settings.TIMESHEET_REVIEW_REMINDER_HOURS)
    for timesheet in timesheets_awaiting_review(now=now, within=within):
        assert timesheet.review_deadline is not None  # noqa: S101 - the selector filters on it
        yield Due(
            timesheet.pk,
            [timesheet.engagement.client_id],
            {
                "timesheet_id": timesheet.pk,
                "engagement_id": timesheet.engagement_id,
                "week_start": timesheet.week_start.isoformat(),
                "minutes": timesheet.minutes,
                "amount_minor": timesheet.amount_minor,
                "currency": timesheet.currency,
                "review_deadline": timesheet.review_deadline.isoformat(),
            },
        )


REMINDERS: list[Reminder] = [
    Reminder("invitation.expiring", _invitations_expiring),
    Reminder("timesheet.awaiting_approval", _timesheets_awaiting_approval),
]


def register(reminder: Reminder) -> None:
    if reminder.kind not in KINDS:
        raise ValueError(f"register the kind {reminder.kind} (marketplace.notifications.kinds) first")
    if all(existing.kind != reminder.kind for existing in REMINDERS):
        REMINDERS.append(reminder)


def reminders_send(*, now: datetime | None = None) -> dict[str, int]:
    """Notify each due subject of each reminder once; returns how many subjects were reminded, per kind."""
    now = now or timezone.now()
    sent: dict[str, int] = {}
    for reminder in REMINDERS:
        sent[reminder.kind] = 0
        for due in reminder.due(now):
            if ReminderSent.objects.filter(kind=reminder.kind, subject_id=due.subject_id).exists():
                continue
            try:
                with transaction.atomic():
                    ReminderSent.objects.create(kind=reminder.kind, subject_id=due.subject_id, created_at=now)
                    for user_id in due.user_ids:
                        notify_user(user_id=user_id, event=reminder.kind, payload=due.payload)
            except IntegrityError:
                continue  # another run reminded it first
            sent[reminder.kind] += 1
            logger.info("reminder.sent", extra={"kind": reminder.kind, "subject_id": due.subject_id})
    return sent
