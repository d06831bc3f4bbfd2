"""Each user's email choice per notification kind: immediately (the default), in a daily digest, or never."""

from typing import Any

from django.db import transaction

from accounts.models import User
from marketplace.models import EmailDelivery, EmailPreference
from marketplace.notifications.errors import EssentialNotification, UnknownNotificationKind
from marketplace.notifications.kinds import KINDS, Kind

# The daily digest's own unsubscribe link stands for every kind the user gets daily.
DAILY_DIGEST = "daily_digest"


def kinds_for(user: User) -> list[Kind]:
    return sorted(
        (kind for kind in KINDS.values() if kind.concerns(role=user.role, is_staff=user.is_staff)),
        key=lambda kind: kind.name,
    )


def email_preferences_of(*, user: User) -> list[dict[str, Any]]:
    """Every kind the user can receive, with their choice and whether it can be changed."""
    chosen = dict(EmailPreference.objects.filter(user=user).values_list("kind", "delivery"))
    return [
        {
            "kind": kind.name,
            "description": kind.description,
            "delivery": EmailDelivery.IMMEDIATELY if kind.always_essential else chosen.get(kind.name, "immediately"),
            "can_turn_off": not kind.always_essential,
            "partly_essential": kind.partly_essential,
        }
        for kind in kinds_for(user)
    ]


def email_preferences_set(*, user: User, choices: dict[str, str]) -> list[dict[str, Any]]:
    """Set the user's choice for each kind named; kinds not named keep theirs.

    Raises UnknownNotificationKind for a kind the user cannot receive, and
    EssentialNotification for anything but "immediately" on an essential kind.
    Nothing is changed unless every choice is valid.
    """
    mine = {kind.name: kind for kind in kinds_for(user)}
    for name, delivery in choices.items():
        if name not in mine:
            raise UnknownNotificationKind(f"No notification kind {name!r} for you.", field=f"preferences.{name}")
        if mine[name].always_essential and delivery != EmailDelivery.IMMEDIATELY:
            raise EssentialNotification(field=f"preferences.{name}")
    with transaction.atomic():
        for name, delivery in choices.items():
            EmailPreference.objects.update_or_create(user=user, kind=name, defaults={"delivery": delivery})
    return email_preferences_of(user=user)


def email_unsubscribe(*, user_id: int, kind: str) -> int:
    """Turn one kind off (or, for the daily digest, every kind the user gets daily); returns how many kinds.

    Essential kinds are never turned off. Idempotent: a second call changes nothing more.
    """
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return 0
    if kind == DAILY_DIGEST:
        names = list(
            EmailPreference.objects.filter(user=user, delivery=EmailDelivery.DAILY).values_list("kind", flat=True)
        )
    else:
        names = [kind]
    names = [name for name in names if name in KINDS and not KINDS[name].always_essential]
    with transaction.atomic():
        for name in names:
            EmailPreference.objects.update_or_create(user=user, kind=name, defaults={"delivery": EmailDelivery.NEVER})
    return len(names)


def delivery_for(*, user_id: int, kind: Kind, payload: dict[str, Any]) -> str:
    """How this notification is emailed to the user: essentials always immediately, else their choice."""
    if kind.is_essential(payload):
        return EmailDelivery.IMMEDIATELY
    chosen = EmailPreference.objects.filter(user_id=user_id, kind=kind.name).values_list("delivery", flat=True).first()
    return chosen or EmailDelivery.IMMEDIATELY
