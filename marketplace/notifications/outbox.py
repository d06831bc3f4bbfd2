"""The email outbox: one row per notification, claimed by compare-and-set, sent at most once.

`record` writes the row in the transaction that writes the notification and sends
`email_send` after commit. The task reads the user's choice when it runs (so a change
of mind just before counts): never -> skipped; daily -> kept for the daily digest;
immediately -> claimed and sent. A claim is `UPDATE ... WHERE status = <waiting>`,
committed before SMTP is called; no transaction or row lock is held while talking to
the mail server. A second run of the task finds the row claimed or sent and sends
nothing. A failed send gives the claim back for the task's retry (bounded, with
backoff); the sweep re-drives rows whose task was lost and rows whose sender died
mid-claim. That last case is the one way an email can go twice: a worker killed after
the mail server took the message and before the row was marked sent.

Unread chat (`message.created`) waits CHAT_EMAIL_DIGEST_MINUTES in the outbox; then
one email lists what the user still has not read, unless they read it or were online
(a live websocket, `Presence`) since it arrived.
"""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from conversations.selectors import unread_messages
from marketplace.models import EmailDelivery, EmailOutbox, Notification, OutboxStatus, Presence
from marketplace.notifications import email
from marketplace.notifications.kinds import KINDS, Kind
from marketplace.notifications.preferences import DAILY_DIGEST, delivery_for

logger = logging.getLogger(__name__)

S = OutboxStatus
# An email's task runs within seconds of its commit; a pending row older than this lost its task.
LOST_AFTER = timedelta(minutes=2)
# A claim held this long belongs to a sender that died (an SMTP call is bounded by the backend's timeout).
STALE_CLAIM = timedelta(minutes=5)
SWEEP_BATCH = 500


def record(notification: Notification) -> EmailOutbox | None:
    """Write the notification's outbox row in the current transaction; its task is sent on commit.

    A kind missing from the registry is not emailed (and a test fails for it), nor is a
    notification its kind does not email (`Kind.emailed`); both return None.
    """
    from marketplace import tasks

    kind = KINDS.get(notification.event)
    if kind is None:
        logger.warning("email.kind_unknown", extra={"event": notification.event})
        return None
    if not kind.emails(notification.payload):
        return None
    due = notification.created_at + timedelta(minutes=settings.CHAT_EMAIL_DIGEST_MINUTES if kind.chat else 0)
    row = EmailOutbox.objects.create(
        notification=notification, user_id=notification.user_id, kind=kind.name, due_at=due
    )
    if not kind.chat:  # chat waits for its delay in the database; the sweep sends it when due
        tasks.email_send.delay_on_commit(row.pk)
    return row


def email_send(*, outbox_id: int, now: datetime | None = None) -> str:
    """Deliver one outbox row as the user chose; returns what happened. Safe to run any number of times.

    Raises OSError (smtplib's errors are OSErrors) when the mail server fails, after
    giving the claim back, so the task retries.
    """
    now = now or timezone.now()
    row = EmailOutbox.objects.select_related("notification", "user").filter(pk=outbox_id).first()
    if row is None or row.status != S.PENDING:
        return "done"
    if row.due_at > now:
        return "not_due"
    kind = KINDS.get(row.kind)
    if kind is not None and kind.chat and row.user.is_active:
        return "sent" if chat_digest_send(user_id=row.user_id, now=now) else "skipped"
    routed = _route(row, kind)
    if routed is not None or kind is None:
        return routed or "skipped"
    essential = kind.is_essential(row.notification.payload)

    def message(rows: list[EmailOutbox]) -> EmailMultiAlternatives | None:
        context = _context(rows[0])
        context["summary"] = email.render_line(kind.summary, context) if kind.summary else ""
        return email.build(
            user=row.user,
            subject=email.render_line(kind.subject, context),
            template=kind.template,
            context=context,
            unsubscribe_kind=None if essential else kind.name,
        )

    return "sent" if _send_claimed([row.pk], S.PENDING, message) else "done"


def _route(row: EmailOutbox, kind: Kind | None) -> str | None:
    """Skip the row or keep it for the digest, as the user chose; None: send it now."""
    if kind is None or not row.user.is_active or not row.user.email:
        _move([row.pk], S.PENDING, S.SKIPPED)
        return "skipped"
    delivery = delivery_for(user_id=row.user_id, kind=kind, payload=row.notification.payload)
    if delivery == EmailDelivery.NEVER:
        _move([row.pk], S.PENDING, S.SKIPPED)
        return "skipped"
    if delivery == EmailDelivery.DAILY:
        _move([row.pk], S.PENDING, S.DIGEST)
        return "digest"
    return None


def chat_digest_send(*, user_id: int, now: datetime | None = None) -> int:
    """One email of the user's unread chat, for their due `message.created` rows; returns how many rows it covered.

    Rows whose messages were all read, or that arrived while the user was online, are
    skipped. With "daily" they wait for the daily digest; with "never" they are skipped.
    """
    now = now or timezone.now()
    chat_kinds = [kind.name for kind in KINDS.values() if kind.chat]
    due = list(
        EmailOutbox.objects.filter(user_id=user_id, kind__in=chat_kinds, status=S.PENDING, due_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not due:
        return 0
    user = User.objects.get(pk=user_id)
    kind = KINDS["message.created"]
    delivery = delivery_for(user_id=user_id, kind=kind, payload={})
    if delivery != EmailDelivery.IMMEDIATELY or not user.is_active:
        _move(due, S.PENDING, S.DIGEST if delivery == EmailDelivery.DAILY and user.is_active else S.SKIPPED)
        return 0

    def message(rows: list[EmailOutbox]) -> EmailMultiAlternatives | None:
        conversations = _unread_chat(user_id, rows)
        if not conversations:
            return None
        return email.build(
            user=user,
            subject=email.render_line(kind.subject, {}),
            template=kind.template,
            context={"conversations": conversations},
            unsubscribe_kind=kind.name,
        )

    return _send_claimed(due, S.PENDING, message)


def daily_digest_send(*, user_id: int, now: datetime | None = None) -> int:
    """One email of everything the user gets daily; returns how many rows it covered (0: nothing to send)."""
    waiting = list(
        EmailOutbox.objects.filter(user_id=user_id, status=S.DIGEST).order_by("pk").values_list("pk", flat=True)
    )
    if not waiting:
        return 0
    user = User.objects.get(pk=user_id)
    if not user.is_active or not user.email:
        _move(waiting, S.DIGEST, S.SKIPPED)
        return 0

    def message(rows: list[EmailOutbox]) -> EmailMultiAlternatives | None:
        chat_rows = [row for row in rows if KINDS[row.kind].chat]
        items = [_item(row) for row in rows if not KINDS[row.kind].chat]
        conversations = _unread_chat(user_id, chat_rows) if chat_rows else []
        if not items and not conversations:
            return None
        return email.build(
            user=user,
            subject="Your day on Vetted",
            template="daily_digest",
            context={"items": items, "conversations": conversations},
            unsubscribe_kind=DAILY_DIGEST,
        )

    return _send_claimed(waiting, S.DIGEST, message)


def daily_digests(*, now: datetime | None = None) -> int:
    """Send every user's daily digest; returns how many emails went out."""
    users = EmailOutbox.objects.filter(status=S.DIGEST).values_list("user_id", flat=True).distinct()
    sent = 0
    for user_id in list(users):
        try:
            sent += bool(daily_digest_send(user_id=user_id, now=now))
        except OSError:
            logger.warning("email.digest_failed", extra={"user_id": user_id}, exc_info=True)  # tried again tomorrow
    return sent


def outbox_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-drive what waits: due chat rows, rows whose task was lost, and claims whose sender died.

    Sends `email_send` for each (the task claims, so a row the sweep and a late task both
    reach is sent once). Returns counts.
    """
    from marketplace import tasks

    now = now or timezone.now()
    stale = EmailOutbox.objects.filter(status=S.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
        status=S.PENDING, claim=""
    )
    chat_kinds = [kind.name for kind in KINDS.values() if kind.chat]
    chat_ids = _first_per_user(now, chat_kinds)[:SWEEP_BATCH]
    lost = (
        EmailOutbox.objects.filter(status=S.PENDING, due_at__lte=now - LOST_AFTER)
        .exclude(kind__in=chat_kinds)
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    lost_ids = list(lost)
    for outbox_id in [*chat_ids, *lost_ids]:
        tasks.email_send.apply_async((outbox_id,))
    return {"stale": stale, "chat": len(chat_ids), "lost": len(lost_ids)}


def _first_per_user(now: datetime, chat_kinds: list[str]) -> list[int]:
    """One due chat row per user: its task sends the user's whole chat digest."""
    seen: dict[int, int] = {}
    rows = EmailOutbox.objects.filter(status=S.PENDING, kind__in=chat_kinds, due_at__lte=now).order_by("pk")
    for pk, user_id in rows.values_list("pk", "user_id"):
        seen.setdefault(user_id, pk)
    return list(seen.values())


# --- claiming and sending -------------------------------------------------------------------


def _move(ids: list[int], frm: str, to: str) -> int:
    return EmailOutbox.objects.filter(pk__in=ids, status=frm).update(status=to, claim="")


def _send_claimed(
    ids: list[int], waiting: str, message: Callable[[list[EmailOutbox]], EmailMultiAlternatives | None]
) -> int:
    """Claim the rows still `waiting`, build their one email, send it with no transaction open, record it.

    Returns how many rows the sent email covered (0 if another run had them, or there was
    nothing left to say, in which case they are skipped). On a mail-server error the
    claim goes back to `waiting` (or to failed after EMAIL_SEND_MAX_ATTEMPTS) and the
    error is raised.
    """
    claim, now = uuid.uuid4().hex, timezone.now()
    taken = EmailOutbox.objects.filter(pk__in=ids, status=waiting).update(
        status=S.SENDING, claim=claim, claimed_at=now, attempts=F("attempts") + 1
    )
    if not taken:
        return 0
    rows = list(EmailOutbox.objects.select_related("notification").filter(claim=claim).order_by("pk"))
    try:
        built = message(rows)
        if built is None:
            EmailOutbox.objects.filter(claim=claim).update(status=S.SKIPPED, claim="")
            return 0
        built.send()
    except Exception as exc:
        attempts = max(row.attempts for row in rows)
        retry = isinstance(exc, OSError) and attempts < settings.EMAIL_SEND_MAX_ATTEMPTS
        EmailOutbox.objects.filter(claim=claim, status=S.SENDING).update(
            status=waiting if retry else S.FAILED, claim="", last_error=repr(exc)[:500]
        )
        logger.warning(
            "email.send_failed",
            extra={"outbox_ids": [row.pk for row in rows], "attempts": attempts, "will_retry": retry},
        )
        raise
    EmailOutbox.objects.filter(claim=claim, status=S.SENDING).update(status=S.SENT, sent_at=timezone.now())
    logger.info("email.sent", extra={"outbox_ids": [row.pk for row in rows], "kind": rows[0].kind})
    return len(rows)


# --- what the templates get -------------------------------------------------------------------


def _context(row: EmailOutbox) -> dict[str, Any]:
    return {"p": row.notification.payload, "kind": KINDS[row.kind], "sent_at": row.notification.created_at}


def _item(row: EmailOutbox) -> dict[str, Any]:
    kind: Kind = KINDS[row.kind]
    context = _context(row)
    return {
        "kind": kind.name,
        "subject": email.render_line(kind.subject, context),
        "summary": email.render_line(kind.summary, context) if kind.summary else "",
        "at": row.notification.created_at,
    }


def _unread_chat(user_id: int, rows: list[EmailOutbox]) -> list[dict[str, Any]]:
    """The conversations of `rows` with messages the user has not read, leaving out those seen online."""
    last_seen = Presence.objects.filter(user_id=user_id).values_list("last_seen_at", flat=True).first()
    conversation_ids = [
        int(row.notification.payload["conversation_id"])
        for row in rows
        if last_seen is None or last_seen < row.notification.created_at
    ]
    unread = unread_messages(user_id=user_id, conversation_ids=conversation_ids)
    return [
        {"title": conversation.request.title, "conversation_id": conversation.pk, "messages": messages}
        for conversation, messages in unread.items()
    ]
