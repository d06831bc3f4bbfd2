"""Every row lock the payments app takes, in one place.

Locks are taken with `of=("self",)` so a join (the engagement) is read, not
locked: two milestones of one engagement never wait on each other. A transaction
locks one milestone at a time, so two cannot deadlock on them. Every lock waits at
most PostgreSQL's `lock_timeout` (then `RowLocked`, a 409).
"""

from payments.errors import MilestoneNotFound
from payments.models import Milestone


def milestone(milestone_id: int) -> Milestone:
    """The milestone with its engagement, its row locked until the transaction ends. Raises MilestoneNotFound."""
    found = (
        Milestone.objects.select_for_update(of=("self",)).select_related("engagement").filter(pk=milestone_id).first()
    )
    if found is None:
        raise MilestoneNotFound()
    return found


def milestone_by_charge(charge_id: str) -> Milestone | None:
    """The milestone funded by `charge_id` (locked), or None."""
    return (
        Milestone.objects.select_for_update(of=("self",))
        .select_related("engagement")
        .filter(charge_id=charge_id)
        .first()
    )
