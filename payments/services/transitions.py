"""Moving a milestone from one state to another: the one table of allowed moves, the audit trail, who is told."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.utils import timezone

from accounts.models import User
from conversations.services import system_message_post_on_commit
from hiring_requests.engagements import may_see
from marketplace.errors import Forbidden
from marketplace.notifications import notify_user
from payments.errors import MilestoneStateConflict
from payments.models import ALLOWED_MOVES, STEP_STATES, Milestone, MilestoneEvent, MilestoneStatus
from reviews.services import review_round_open

logger = logging.getLogger(__name__)

M = MilestoneStatus
# States the engagement's chat hears about.
_TOLD_IN_CHAT = (M.FUNDED, M.SUBMITTED, M.RELEASED, M.REFUNDED, M.DISPUTED)


def move(milestone: Milestone, to: MilestoneStatus, *, actor: User | None, fields: list[str], note: str = "") -> None:
    """Save `milestone` in state `to` with `fields`, if ALLOWED_MOVES allows it; record and announce the move.

    The caller holds the row lock (`payments.locks`). Entering a Stripe step stamps
    `step_claimed_at`; leaving one clears it. Raises MilestoneStateConflict.
    """
    if to not in ALLOWED_MOVES[milestone.status]:
        raise MilestoneStateConflict(f"A {milestone.status} milestone cannot become {to}.")
    from_status = milestone.status
    milestone.status = to
    milestone.step_claimed_at = timezone.now() if to in STEP_STATES else None
    milestone.step_failures = 0
    milestone.save(update_fields=["status", "step_claimed_at", "step_failures", *fields])
    MilestoneEvent.objects.create(milestone=milestone, from_status=from_status, to_status=to, actor=actor, note=note)
    if to == M.RELEASED:
        # The engineer is paid for this step: both sides may now review each other.
        review_round_open(engagement=milestone.engagement, step=f"milestone-{milestone.pk}")
    _announce(milestone)
    logger.info("milestone.moved", extra={"milestone_id": milestone.pk, "from": from_status, "to": to})


def _announce(milestone: Milestone) -> None:
    engagement = milestone.engagement
    payload = {
        "milestone_id": milestone.pk,
        "status": milestone.status,
        "amount_minor": milestone.amount_minor,
        "currency": milestone.currency,
        "title": milestone.title,
    }
    for user_id in (engagement.client_id, engagement.engineer_id):
        notify_user(user_id=user_id, event="milestone.changed", payload=payload)
    if milestone.status not in _TOLD_IN_CHAT:
        return
    system_message_post_on_commit(
        request_id=engagement.request_id,
        engineer_id=engagement.engineer_id,
        payload={"event": f"milestone.{milestone.status}", **payload},
    )


def require_party(user: User | None, milestone: Milestone, side: str) -> None:
    """Refuse (Forbidden) unless `user` is the engagement's `side` ("client" or "engineer"); None is the system."""
    if user is None:
        return
    expected = milestone.engagement.client_id if side == "client" else milestone.engagement.engineer_id
    if user.pk != expected:
        raise Forbidden(f"Only the engagement's {side} can do this.")


def visible_to(user: User | None, milestone: Milestone) -> bool:
    """Whether `user` (None: the system) may see `milestone`: its engagement's rule (`may_see`)."""
    return may_see(user, milestone.engagement)


def alert_staff(*, event: str, payload: dict[str, Any]) -> None:
    """Tell every active staff member (notification stream) and log an error for the operator's alerting."""
    logger.error(event, extra=payload)
    for staff_id in User.objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True):
        notify_user(user_id=staff_id, event=event, payload=payload)


def blocking[**P, T](operation: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """The sync face of an async operation, for Celery tasks, admin actions and sync tests."""
    return async_to_sync(operation)
