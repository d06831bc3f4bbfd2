"""An engineer's weekly hours, and what already holds them.

What counts, by the moment of asking (docs/matching.md, "Capacity"):
- inviting: active engagements, accepted offers and pending offers on open requests;
- accepting: active engagements and other accepted offers;
- hiring: active engagements (the accepted offer becomes the engagement).
Inviting, accepting and hiring decide under a lock on the engineer's profile row, so
two clients hiring the same engineer at once cannot both take the last hours, and two
requests matched at once cannot both send the offer that passes the pending cap.
"""

from django.conf import settings
from django.db.models import Sum

from accounts.models import EngineerProfile
from hiring_requests import matching
from hiring_requests.errors import EngineerAtCapacity
from hiring_requests.models import (
    ACTIVE_STATUSES,
    Engagement,
    EngagementStatus,
    Invitation,
    InvitationStatus,
)


def _engaged(engineer_id: int) -> int:
    total = Engagement.objects.filter(engineer_id=engineer_id, status=EngagementStatus.ACTIVE).aggregate(
        hours=Sum("hours_per_week")
    )["hours"]
    return int(total or 0)


def _offered(engineer_id: int, statuses: list[str], *, excluding_invitation: int | None) -> int:
    held = Invitation.objects.filter(engineer_id=engineer_id, status__in=statuses, request__status__in=ACTIVE_STATUSES)
    if excluding_invitation is not None:
        held = held.exclude(pk=excluding_invitation)
    return int(held.aggregate(hours=Sum("offered_hours_per_week"))["hours"] or 0)


def lock_profile(engineer_id: int) -> EngineerProfile:
    """The engineer's profile row, locked: capacity decisions about one engineer happen one at a time."""
    return EngineerProfile.objects.select_for_update(of=("self",)).get(user_id=engineer_id)


def check_can_accept(profile: EngineerProfile, *, invitation: Invitation) -> None:
    """Raise EngineerAtCapacity unless engagements, other accepted offers and this one fit the week (hours)."""
    held = _engaged(profile.user_id) + _offered(
        profile.user_id, [InvitationStatus.ACCEPTED], excluding_invitation=invitation.pk
    )
    if held + invitation.offered_hours_per_week > profile.weekly_hours_available:
        raise EngineerAtCapacity(
            f"You have {max(0, profile.weekly_hours_available - held)} free hours a week; "
            f"this request needs {invitation.offered_hours_per_week}."
        )


def check_can_hire(profile: EngineerProfile, *, hours_per_week: int) -> None:
    """Raise EngineerAtCapacity unless active engagements and this one fit the engineer's week."""
    held = _engaged(profile.user_id)
    if held + hours_per_week > profile.weekly_hours_available:
        raise EngineerAtCapacity(
            f"The engineer has {max(0, profile.weekly_hours_available - held)} free hours a week left; "
            f"this request needs {hours_per_week}."
        )


def lock_invitable(engineer_ids: list[int], *, hours_per_week: int) -> set[int]:
    """Of `engineer_ids`, those who can still take an offer of `hours_per_week`, with their profiles locked.

    Ranking reads without locks, so a wave for another request may have invited the
    same engineers since. The profiles are locked in id order (no deadlock between
    two waves) and checked again: hours held by active engagements and open offers,
    and fewer than MATCH_MAX_PENDING_INVITATIONS pending offers.
    """
    profiles = dict(
        EngineerProfile.objects.select_for_update(of=("self",))
        .filter(user_id__in=engineer_ids)
        .order_by("user_id")
        .values_list("user_id", "weekly_hours_available")
    )
    now_doing = matching.doing(list(profiles))
    cap = settings.MATCH_MAX_PENDING_INVITATIONS
    return {
        engineer_id
        for engineer_id, available in profiles.items()
        if now_doing[engineer_id].engaged_hours + now_doing[engineer_id].held_hours + hours_per_week <= available
        and now_doing[engineer_id].pending_open < cap
    }
