"""Engagements as the other apps read them: which are a user's, and who may see one.

An engagement is the hire (hiring_requests.models.Engagement). Payments bills it, reviews rate it and
the pages show it; they keep foreign keys to it and ask the questions below here, instead of
querying hiring_requests' table themselves (the import contracts in pyproject.toml; docs/architecture.md,
"Boundaries"). The visibility rule is written once, here: an engagement is seen by its client and
its engineer, and by staff (`party_q`, `visible_q`, `may_see`).

The module sits beside hiring_requests.models, below every app that calls it: it imports nothing
but those models and the auth user model.
"""

from typing import Literal

from django.db.models import Q, QuerySet

from accounts.models import User
from hiring_requests.models import BudgetKind, Engagement, EngagementStatus

Side = Literal["client", "engineer"]


def party_q(user: User, *, through: str = "") -> Q:
    """Rows whose engagement (reached by `through`, such as "engagement__") has `user` as client or engineer."""
    return Q(**{f"{through}client": user}) | Q(**{f"{through}engineer": user})


def visible_q(user: User, *, through: str = "") -> Q:
    """Rows whose engagement `user` may see: every row for staff, else `party_q`. For the other apps' tables
    that hang on an engagement (milestones, billing, timesheets: `through="engagement__"`)."""
    return Q() if user.is_staff else party_q(user, through=through)


def may_see(user: User | None, engagement: Engagement) -> bool:
    """The same rule on an engagement already read; None is the system (a task, the sweep), which sees all."""
    return user is None or user.is_staff or user.pk in (engagement.client_id, engagement.engineer_id)


def engagements_of_party(user: User) -> QuerySet[Engagement]:
    """The engagements `user` is in, as client or as engineer (staff included: only their own), unordered."""
    return Engagement.objects.filter(party_q(user))


def engagements_visible_to(user: User) -> QuerySet[Engagement]:
    """The engagements `user` may see: their own, and every one for staff. Unordered."""
    return Engagement.objects.filter(visible_q(user))


def engagement_visible(*, user: User, engagement_id: int) -> bool:
    """Whether engagement `engagement_id` exists and `user` may see it (`engagements_visible_to`). One query."""
    return engagements_visible_to(user).filter(pk=engagement_id).exists()


def engagement_of(*, user: User, engagement_id: int, side: Side) -> Engagement | None:
    """Engagement `engagement_id` when `user` is its `side`, in any status; None otherwise (staff too)."""
    if side not in ("client", "engineer"):
        raise ValueError(f"side must be 'client' or 'engineer', not {side!r}")
    return Engagement.objects.filter(pk=engagement_id, **{side: user}).first()


__all__ = [
    "BudgetKind",
    "EngagementStatus",
    "Side",
    "engagement_of",
    "engagement_visible",
    "engagements_of_party",
    "engagements_visible_to",
    "may_see",
    "party_q",
    "visible_q",
]
