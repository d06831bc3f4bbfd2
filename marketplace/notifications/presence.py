"""Who was online: a user's live websockets refresh `Presence.last_seen_at` (at open, then every minute or so)."""

from datetime import datetime, timedelta

from django.utils import timezone

from marketplace.models import Presence

# A socket writes its user's presence at most this often: "online since a message arrived" needs no finer grain.
WRITE_EVERY = timedelta(seconds=60)


def presence_seen(user_id: int, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    Presence.objects.update_or_create(user_id=user_id, defaults={"last_seen_at": now})
