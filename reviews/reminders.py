"""The review window's reminder: a client who has not reviewed is told a day before the window closes.

Registered with marketplace.notifications (its kind and its reminder) when the app is ready.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from marketplace.notifications import kinds, reminders
from reviews.selectors import rounds_closing_without_client_review

REMIND_BEFORE = timedelta(hours=24)

WINDOW_CLOSING = kinds.Kind(
    "review.window_closing",
    kinds.CLIENT,
    "Reminder: the window to review an engagement closes within 24 hours.",
    subject="Last day to review engagement #{{ p.engagement_id }}",
    summary="Your review of engagement #{{ p.engagement_id }} ({{ p.step }}) is still missing; the window closes"
    " {{ p.closes_at|when }}, then the other side's review is published without yours.",
)


def _due(now: datetime) -> Iterable[reminders.Due]:
    for round_ in rounds_closing_without_client_review(now=now, within=REMIND_BEFORE):
        yield reminders.Due(
            round_.pk,
            [round_.engagement.client_id],
            {
                "round_id": round_.pk,
                "engagement_id": round_.engagement_id,
                "step": round_.step,
                "closes_at": round_.closes_at.isoformat(),
            },
        )


def register_reminders() -> None:
    kinds.register(WINDOW_CLOSING)
    reminders.register(reminders.Reminder(WINDOW_CLOSING.name, _due))
