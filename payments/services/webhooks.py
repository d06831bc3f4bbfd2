"""Stripe's webhooks: verified, stored before anything else, acted on in any state, never given up.

The view stores the event under Stripe's id and answers 2xx at once; a task
processes it. Handlers read the object again from Stripe (an event's copy may be
stale, and events arrive out of order or twice), so processing is idempotent.
A failed attempt is retried with exponential backoff from the database (the
sweep), not from the broker, for as long as it takes: Stripe itself retries for
up to three days (https://docs.stripe.com/webhooks#retries). An event unprocessed
for STRIPE_EVENT_STUCK_SECONDS is stuck: readiness reports it and staff are told.
"""

import json
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import stripe
from cachetools import LRUCache
from django.conf import settings
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Field, Q
from django.utils import timezone

from marketplace.db import atomic_phase
from marketplace.rows import per_vendor
from payments import gateway, locks
from payments.errors import InvalidEvent, InvalidSignature
from payments.models import Dispute, Milestone, MilestoneStatus, StripeEvent
from payments.services import ledger
from payments.services.hourly import asetup_intent_sync
from payments.services.milestones import amilestone_mark_funded
from payments.services.onboarding import apayout_account_sync
from payments.services.timesheet_billing import atimesheet_mark_charged, atimesheets_resume_for
from payments.services.transitions import alert_staff, blocking, move

logger = logging.getLogger(__name__)

M = MilestoneStatus
WEBHOOK_TOLERANCE_SECONDS = 300
RETRY_CAP_SECONDS = 3_600
# Escrow holds the whole amount and no Stripe step is moving it: a chargeback takes it from escrow.
_HELD = (M.FUNDED, M.SUBMITTED, M.CHANGES_REQUESTED, M.APPROVED, M.DISPUTED)


def _signed_at(signature: str) -> int | None:
    """The `t=` timestamp (Unix seconds) of a Stripe-Signature header, or None."""
    for item in signature.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            return int(value)
    return None


def _well_formed(body: Any) -> dict[str, Any]:
    """The event as a dict if it has the shape of a Stripe event, else raise InvalidEvent.

    https://docs.stripe.com/api/events/object: an object with a string `id`, a string
    `type`, and `data.object` an object. Text must be storable (no NUL, no lone surrogates).
    """
    from marketplace.schemas import refuse_unstorable

    if not isinstance(body, dict):
        raise InvalidEvent("A webhook body is a JSON object.")
    event_id, kind, data = body.get("id"), body.get("type"), body.get("data")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 100:
        raise InvalidEvent("id must be a string of 1 to 100 characters.")
    if not isinstance(kind, str) or not 1 <= len(kind) <= 100:
        raise InvalidEvent("type must be a string of 1 to 100 characters.")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise InvalidEvent("data.object must be an object.")
    try:
        refuse_unstorable(body)
    except ValueError as exc:
        raise InvalidEvent(str(exc)) from None
    return body


def stripe_event_receive(*, payload: bytes, signature: str | None) -> bool:
    """Verify the signature on the raw body, then store under Stripe's event id.

    The signature's timestamp must lie within WEBHOOK_TOLERANCE_SECONDS (300) of now,
    in either direction (stripe-python checks only the past). Returns True for an event
    stored now, False for one already stored (Stripe delivers at least once).
    Raises InvalidSignature, or InvalidEvent for a signed body that is not a
    well-formed event; either way nothing is stored.
    https://docs.stripe.com/webhooks#verify-events
    """
    from payments import tasks

    if not signature:
        raise InvalidSignature("The Stripe-Signature header is missing.")
    try:
        # The signature alone: stripe-python's construct_event would also parse the body, and fails
        # with an AttributeError on a signed body that is valid JSON but not an object.
        stripe.WebhookSignature.verify_header(
            payload.decode(), signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidSignature(str(exc)) from None
    signed_at = _signed_at(signature)
    if signed_at is None or signed_at > time.time() + WEBHOOK_TOLERANCE_SECONDS:
        raise InvalidSignature("The signature's timestamp is in the future, beyond the tolerance.")
    try:
        body = json.loads(payload)
    except ValueError:
        raise InvalidEvent("A webhook body is a JSON object.") from None
    event = _well_formed(body)
    # A duplicate (Stripe retries until it gets a 2xx) this process knows of costs no statement; any
    # other event, one: an insert that does nothing when the id is stored already.
    if stored_event_ids.known(event["id"]):
        return False
    stored_id = _insert_unless_stored(event)
    if stored_id is not None:
        tasks.process_stripe_event.delay_on_commit(stored_id)
    stored_event_ids.remember_on_commit(event["id"])
    return stored_id is not None


def _insert_fields() -> list[Field[Any, Any]]:
    return [field for field in StripeEvent._meta.concrete_fields if not field.primary_key]


@per_vendor
def _insert_sql(connection: BaseDatabaseWrapper) -> str:
    meta = StripeEvent._meta

    def column(field: Field[Any, Any]) -> str:
        assert field.column is not None  # noqa: S101 - a concrete field has its column
        return connection.ops.quote_name(field.column)

    fields = _insert_fields()
    assert meta.pk is not None  # noqa: S101
    return (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({', '.join(column(f) for f in fields)})"  # noqa: S608 - names from the model, quoted
        f" VALUES ({', '.join(['%s'] * len(fields))})"
        f" ON CONFLICT ({column(meta.get_field('stripe_id'))}) DO NOTHING"
        f" RETURNING {column(meta.pk)}"
    )


def _insert_unless_stored(event: dict[str, Any]) -> int | None:
    """Store `event` under its Stripe id unless a row has that id; the new row's id, or None when it had.

    One statement, written out (`INSERT ... ON CONFLICT (stripe_id) DO NOTHING RETURNING id`, PostgreSQL
    and SQLite 3.35+): Django's `get_or_create` reads, then inserts in a savepoint, five round trips in
    all. The values go through each field's own preparation (`pre_save`, `get_db_prep_save`), as the
    ORM's insert does: the defaults, and the payload as JSON.
    """
    row = StripeEvent(stripe_id=event["id"], type=event["type"], payload=event)
    connection = connections[router.db_for_write(StripeEvent)]
    values = [field.get_db_prep_save(field.pre_save(row, add=True), connection) for field in _insert_fields()]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection), values)
        inserted = cursor.fetchone()
    return None if inserted is None else int(inserted[0])


class StoredEventIds:
    """Event ids this process knows are stored: the newest `maxsize` of them, least recently used first out.

    Once stored, an event stays stored (nothing deletes a StripeEvent), so knowing it is enough to
    answer a duplicate without asking PostgreSQL: a retry storm, or a signed body replayed within the
    signature's tolerance, costs no database connection. An id is learnt once the statement that
    stored it, or found it stored, has committed (`remember_on_commit`; at once outside a
    transaction), never before: a rolled-back insert must not be taken for stored. An id this
    process has not seen (another process stored it, or it was forgotten) costs the one statement
    of `_insert_unless_stored`. Thread-safe: sync views run on several threads.
    """

    def __init__(self, maxsize: int) -> None:
        self._ids: LRUCache[str, bool] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def known(self, stripe_id: str) -> bool:
        """Whether `stripe_id` is remembered as stored; a hit counts as a use (LRUCache.get, unlike `in`)."""
        with self._lock:
            return self._ids.get(stripe_id) is not None

    def remember(self, stripe_id: str) -> None:
        with self._lock:
            self._ids[stripe_id] = True

    def remember_on_commit(self, stripe_id: str) -> None:
        transaction.on_commit(lambda: self.remember(stripe_id))

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()


stored_event_ids = StoredEventIds(maxsize=settings.WEBHOOK_STORED_IDS_REMEMBERED)


# --- disputes: recorded whatever the milestone's state -----------------------------------------


def _dispute_record(
    *, dispute_id: str, charge_id: str, amount: int, currency: str, reason: str, status: str
) -> Dispute | None:
    """Record a card dispute, or its new status, whatever the milestone is doing. Rules in docs/payments.md."""
    milestone = locks.milestone_by_charge(charge_id)
    dispute, created = Dispute.objects.get_or_create(
        stripe_id=dispute_id,
        defaults={
            "milestone": milestone,
            "charge_id": charge_id,
            "amount_minor": amount,
            "currency": currency,
            "reason": reason,
            "status": status,
        },
    )
    if milestone is None:
        if created:
            alert_staff(event="dispute.unmatched", payload={"dispute_id": dispute_id, "charge_id": charge_id})
        return dispute
    # Closed before this read: a row just created holds Stripe's status already, so a dispute first seen
    # closed (its events processed late, after the network decided) is opened and then closed here.
    closed_before = not created and dispute.status in ("won", "lost")
    if created:
        _dispute_opened(milestone, dispute, reason=reason)
    if status in ("won", "lost") and not closed_before:
        _dispute_closed(milestone, dispute, won=status == "won")
    if dispute.status != status:
        Dispute.objects.filter(pk=dispute.pk).update(status=status)
    return dispute


def _dispute_opened(milestone: Milestone, dispute: Dispute, *, reason: str) -> None:
    if milestone.status in _HELD:
        # Escrow held it: the card network took it back from there. Stripe's dispute decides the rest.
        ledger.book_chargeback(milestone, dispute_id=dispute.stripe_id, amount_minor=dispute.amount_minor)
        milestone.disputed_at, milestone.dispute_reason = timezone.now(), f"card dispute: {reason}"
        move(
            milestone,
            M.CHARGED_BACK,
            actor=None,
            fields=["disputed_at", "dispute_reason"],
            note=milestone.dispute_reason,
        )
    else:
        # The money already left escrow (released, refunded, or on its way): the platform is exposed.
        ledger.book_dispute_exposure(milestone, dispute_id=dispute.stripe_id, amount_minor=dispute.amount_minor)
        Dispute.objects.filter(pk=dispute.pk).update(platform_exposed=True)
        dispute.platform_exposed = True
    alert_staff(
        event="milestone.disputed",
        payload={
            "milestone_id": milestone.pk,
            "dispute_id": dispute.stripe_id,
            "reason": f"card dispute: {reason}",
            "milestone_status": milestone.status,
            "amount_minor": dispute.amount_minor,
        },
    )


def _dispute_closed(milestone: Milestone, dispute: Dispute, *, won: bool) -> None:
    if won:
        ledger.book_dispute_won(
            milestone,
            dispute_id=dispute.stripe_id,
            amount_minor=dispute.amount_minor,
            exposed=dispute.platform_exposed,
        )
        if milestone.status == M.CHARGED_BACK:
            move(milestone, M.FUNDED, actor=None, fields=[], note="card dispute won: the money is back in escrow")
    elif milestone.status == M.CHARGED_BACK:
        move(milestone, M.REFUNDED, actor=None, fields=[], note="card dispute lost: the cardholder keeps the money")
    alert_staff(
        event="dispute.closed", payload={"milestone_id": milestone.pk, "dispute_id": dispute.stripe_id, "won": won}
    )


async def adispute_sync(*, dispute_id: str) -> Dispute | None:
    """Read a dispute from Stripe and record it; see docs/payments.md for who carries the loss."""
    remote = await gateway.retrieve_dispute(dispute_id)
    charge = remote.charge if isinstance(remote.charge, str) else remote.charge.id
    return await atomic_phase(_dispute_record)(
        dispute_id=remote.id,
        charge_id=charge,
        amount=remote.amount,
        currency=remote.currency,
        reason=remote.reason or "",
        status=remote.status,
    )


# --- processing -------------------------------------------------------------------------------


def _payment_intent_succeeded(obj: dict[str, Any]) -> Awaitable[object]:
    """A milestone funded by the client in Stripe.js, or an hourly week charged (its metadata says which)."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    if metadata and "timesheet_id" in metadata:
        return atimesheet_mark_charged(payment_intent_id=obj["id"])
    return amilestone_mark_funded(payment_intent_id=obj["id"])


async def _setup_intent_succeeded(obj: dict[str, Any]) -> None:
    """A card saved: the engagement starts or resumes, and weeks waiting on a working card are charged."""
    billing = await asetup_intent_sync(setup_intent_id=obj["id"])
    if billing is not None:
        await atimesheets_resume_for(engagement_id=billing.engagement_id)


HANDLERS: dict[str, Callable[[dict[str, Any]], Awaitable[object]]] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "setup_intent.succeeded": _setup_intent_succeeded,
    "account.updated": lambda obj: apayout_account_sync(stripe_account_id=obj["id"]),
    "charge.dispute.created": lambda obj: adispute_sync(dispute_id=obj["id"]),
    "charge.dispute.closed": lambda obj: adispute_sync(dispute_id=obj["id"]),
}


def _run_handler(handler: Callable[[dict[str, Any]], Awaitable[object]], obj: dict[str, Any]) -> None:
    async def run() -> None:
        await handler(obj)

    blocking(run)()


def retry_delay(attempts: int) -> timedelta:
    """Backoff after `attempts` failures: 10 s doubling, capped at an hour, with full jitter."""
    ceiling = min(RETRY_CAP_SECONDS, 10 * 2 ** min(attempts, 20))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not crypto


def stripe_event_process(*, event_id: int) -> bool:
    """Apply a stored event once. On failure, schedule the next attempt and return False (never raises).

    Returns True when this call processed it.
    """
    event = StripeEvent.objects.get(pk=event_id)
    if event.processed_at is not None:
        return False
    StripeEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    handler = HANDLERS.get(event.type)
    try:
        if handler is not None:
            _run_handler(handler, event.payload["data"]["object"])
    except Exception as exc:
        next_at = timezone.now() + retry_delay(event.attempts + 1)
        StripeEvent.objects.filter(pk=event.pk).update(last_error=repr(exc)[:2000], next_attempt_at=next_at)
        logger.warning(
            "stripe_event.failed",
            extra={"event": event.stripe_id, "attempts": event.attempts + 1, "error": type(exc).__name__},
        )
        return False
    return StripeEvent.objects.filter(pk=event.pk, processed_at=None).update(processed_at=timezone.now()) == 1


def _unprocessed() -> Q:
    return Q(processed_at__isnull=True)


def stripe_events_due(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Events to try now: failed ones whose backoff has passed, and any whose first task was lost (a minute on)."""
    now = now or timezone.now()
    due = Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, received_at__lte=now - timedelta(minutes=1))
    return list(
        StripeEvent.objects.filter(_unprocessed(), due).order_by("received_at").values_list("pk", flat=True)[:limit]
    )


def stripe_events_retry(*, now: datetime | None = None) -> dict[str, int]:
    """The sweep's part: process due events and tell staff (once) of any stuck one."""
    counts = {"processed": 0, "failed": 0, "stuck": 0}
    for event_id in stripe_events_due(now=now):
        counts["processed" if stripe_event_process(event_id=event_id) else "failed"] += 1
    stuck = stripe_events_stuck(now=now).filter(alerted_at__isnull=True)
    for event in stuck:
        alert_staff(
            event="stripe_event.stuck",
            payload={
                "event": event.stripe_id,
                "type": event.type,
                "attempts": event.attempts,
                "error": event.last_error,
            },
        )
        counts["stuck"] += 1
    stuck.update(alerted_at=timezone.now())
    return counts


def stripe_events_stuck(*, now: datetime | None = None) -> Any:
    """Events unprocessed for longer than STRIPE_EVENT_STUCK_SECONDS (a QuerySet)."""
    now = now or timezone.now()
    return StripeEvent.objects.filter(
        _unprocessed(), received_at__lte=now - timedelta(seconds=settings.STRIPE_EVENT_STUCK_SECONDS)
    )


async def astripe_events_reconcile() -> int:
    """Store and process events Stripe could not deliver to us. Returns how many were missing here."""
    missing = 0
    for remote in await gateway.undelivered_events():
        data = remote.to_dict()
        stored, created = await atomic_phase(_store_event)(data)
        missing += int(created)
        if stored.processed_at is None:
            await atomic_phase(_enqueue)(stored.pk)
    return missing


def _store_event(data: dict[str, Any]) -> tuple[StripeEvent, bool]:
    return StripeEvent.objects.get_or_create(stripe_id=data["id"], defaults={"type": data["type"], "payload": data})


def _enqueue(event_id: int) -> None:
    from payments import tasks

    tasks.process_stripe_event.delay_on_commit(event_id)


stripe_events_reconcile = blocking(astripe_events_reconcile)
