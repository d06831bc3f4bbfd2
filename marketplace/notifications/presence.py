"""Who was online: a user's live websockets refresh `Presence.last_seen_at` (at open, then every minute or so)."""

from datetime import datetime, timedelta

from django.utils import timezone

from marketplace.models import Presence

# A socket writes its user's presence at most this often: "online since a message arrived" needs no finer grain.
WRITE_EVERY = timedelta(seconds=60)


def presence_seen(user_id: int, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    # No row lock: two sockets of one user writing at once both win, each with "now".
    if not Presence.objects.filter(user_id=user_id).update(last_seen_at=now):
        Presence.objects.bulk_create([Presence(user_id=user_id, last_seen_at=now)], ignore_conflicts=True)
