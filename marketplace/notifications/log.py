"""The notification log: written with the change, numbered and pushed after commit, read after a seq.

Every notification is a `marketplace.models.Notification` row. `notify_user`
writes it in the caller's transaction, so a rolled-back change tells nobody. On
commit, `publish` numbers the user's waiting rows under the lock of their
`NotificationStream` row and pushes each on the channel layer. A client that
was away asks for everything after the last seq it saw (the websocket's
`?after=N`, or `GET /api/notifications?after=N`) and gets what it missed, in
order, once. The push is a shortcut, never the record: a lost push is found by
the next read.
"""

import logging
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import DatabaseError, transaction
from django.db.models import Min, QuerySet
from django.utils import timezone
from opentelemetry.trace import SpanKind, StatusCode

from marketplace import telemetry
from marketplace.models import Notification, NotificationStream

logger = logging.getLogger(__name__)

# A row still unnumbered this long after it was written lost its publish (a process died between
# commit and publish, or the database refused the numbering): the sweep numbers and pushes it.
UNNUMBERED_GRACE = timedelta(seconds=5)


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's open notification sockets."""
    return f"user.{user_id}"


def as_frame(row: Notification) -> dict[str, Any]:
    """A notification as clients read it: {"seq", "event", "payload", "sent_at" (ISO 8601, UTC)}."""
    return {"seq": row.seq, "event": row.event, "payload": row.payload, "sent_at": row.created_at.isoformat()}


def notify_user(*, user_id: int, event: str, payload: dict[str, Any]) -> Notification:
    """Record a notification for `user_id` in the current transaction; it is numbered and pushed on commit.

    Its email is recorded in the same transaction (marketplace.notifications.outbox) and sent
    as the user chose. `event` must be a kind of marketplace.notifications.kinds.

    `payload` must be JSON-serialisable. Raises what the database raises for the
    insert (so the caller's transaction fails with it); a failure to publish after
    commit is logged, never raised: the sweep publishes the row later.
    """
    from marketplace.notifications import outbox

    row = Notification.objects.create(user_id=user_id, event=event, payload=payload)
    outbox.record(row)
    transaction.on_commit(lambda: publish(user_id), robust=True)
    return row


def number_pending(user_id: int) -> list[Notification]:
    """Give the user's unnumbered notifications the next seqs, oldest first; returns them numbered.

    One short transaction under the row lock of the user's stream, so two
    publishers never hand out the same numbers and seq order is commit order.
    """
    NotificationStream.objects.bulk_create([NotificationStream(user_id=user_id)], ignore_conflicts=True)
    with transaction.atomic():
        stream = NotificationStream.objects.select_for_update().get(user_id=user_id)
        pending = list(Notification.objects.filter(user_id=user_id, seq=None).order_by("pk"))
        for row in pending:
            stream.last_seq += 1
            row.seq = stream.last_seq
        if pending:
            Notification.objects.bulk_update(pending, ["seq"])
            stream.save(update_fields=["last_seq"])
    return pending


def publish(user_id: int) -> list[Notification]:
    """Number the user's waiting notifications and push them to their open sockets. Never raises."""
    try:
        numbered = number_pending(user_id)
    except DatabaseError:
        logger.warning("notification.number_failed", extra={"user_id": user_id}, exc_info=True)
        return []
    layer = get_channel_layer()
    if layer is None or not numbered:
        return numbered
    # A span of the work that committed the rows (a request, or the task it enqueued), so the
    # trace runs from the HTTP call to the push; the consumers only forward what is pushed.
    with telemetry.tracer().start_as_current_span(
        "notification.push",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "channels",
            "messaging.destination.name": user_group(user_id),
            "messaging.batch.message_count": len(numbered),
            "vetted.notification.events": sorted({row.event for row in numbered}),
        },
    ) as span:
        try:
            for row in numbered:
                async_to_sync(layer.group_send)(user_group(user_id), {"type": "notify", **as_frame(row)})
        except Exception as exc:
            # The rows are committed and numbered: sockets find them on their next read or reconnect.
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            logger.warning("notification.push_failed", extra={"user_id": user_id, "error": repr(exc)})
    return numbered


def last_seq(user_id: int) -> int:
    """The seq of the user's newest numbered notification (0 if none)."""
    stream = NotificationStream.objects.filter(user_id=user_id).values_list("last_seq", flat=True).first()
    return int(stream or 0)


def numbered_of(*, user_id: int, after: int = 0) -> QuerySet[Notification]:
    """The user's numbered notifications with seq > `after`, oldest first, to page with a cursor."""
    return Notification.objects.filter(user_id=user_id, seq__gt=after).order_by("seq", "id")


def notifications_after(*, user_id: int, after: int, limit: int) -> tuple[list[Notification], bool]:
    """The user's numbered notifications with seq > `after`, oldest first, at most `limit`; and whether more wait."""
    rows = list(Notification.objects.filter(user_id=user_id, seq__gt=after).order_by("seq")[: limit + 1])
    return rows[:limit], len(rows) > limit


def mark_read(*, user_id: int, up_to: int) -> int:
    """Mark the user's notifications up to seq `up_to` as read; returns how many stay unread."""
    Notification.objects.filter(user_id=user_id, seq__lte=up_to, read_at=None).update(read_at=timezone.now())
    return unread_count(user_id=user_id)


def unread_count(*, user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, seq__isnull=False, read_at=None).count()


def sweep_unnumbered(*, now: Any = None) -> int:
    """Publish rows left unnumbered longer than UNNUMBERED_GRACE; returns how many were numbered."""
    cutoff = (now or timezone.now()) - UNNUMBERED_GRACE
    users = (
        Notification.objects.filter(seq=None)
        .values("user_id")
        .annotate(oldest=Min("created_at"))
        .filter(oldest__lt=cutoff)
        .values_list("user_id", flat=True)
    )
    return sum(len(publish(user_id)) for user_id in list(users))


def prune(*, older_than: timedelta) -> int:
    """Delete numbered notifications created more than `older_than` ago; returns how many."""
    deleted, _ = Notification.objects.filter(seq__isnull=False, created_at__lt=timezone.now() - older_than).delete()
    return deleted
