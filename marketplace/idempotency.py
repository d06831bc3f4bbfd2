"""Our own API's Idempotency-Key header: a retried request replays the first answer instead of acting again.

As Stripe's (https://docs.stripe.com/api/idempotent_requests): the key is the
caller's, scoped to the user; the same key with a different body is refused
(409 `idempotency_key_reused`); a copy arriving while the first still runs is
refused (409 `idempotency_key_in_flight`, with Retry-After). A key whose request
died (its process killed) holds no answer; once it has been locked longer than
IDEMPOTENCY_IN_FLIGHT_SECONDS the next request takes it over and runs. That is
safe because every operation behind a key is itself idempotent (money steps
replay their own Stripe keys).
"""

import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from marketplace.db import atomic_phase
from marketplace.errors import DomainError
from marketplace.models import IdempotencyRecord


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 409
    default_detail = "This Idempotency-Key was used with a different request."


class IdempotencyKeyInFlight(DomainError):
    code = "idempotency_key_in_flight"
    status = 409
    default_detail = "A request with this Idempotency-Key is still running; retry in a moment."
    retry_after = 1


@dataclass(frozen=True)
class _Replay:
    status: int
    body: Any


def _claim(*, user_id: int, key: str, fingerprint: str) -> int | _Replay:
    """The record to fill (its id), or the answer to replay. Raises IdempotencyKeyReused or IdempotencyKeyInFlight."""
    # A unique (user, key) insert is the claim: exactly one concurrent request wins it.
    with contextlib.suppress(IntegrityError), transaction.atomic():
        return IdempotencyRecord.objects.create(user_id=user_id, key=key, fingerprint=fingerprint).pk
    existing = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
    if existing is None:
        # The request that held it failed and gave it back between our insert and this read.
        raise IdempotencyKeyInFlight()
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if existing.status_code is not None:
        return _Replay(existing.status_code, existing.body)
    abandoned_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)
    taken = IdempotencyRecord.objects.filter(pk=existing.pk, status_code=None, locked_at__lt=abandoned_before).update(
        locked_at=timezone.now()
    )
    if taken != 1:
        raise IdempotencyKeyInFlight()
    return existing.pk


def _store(*, record_id: int, status: int, body: Any) -> None:
    IdempotencyRecord.objects.filter(pk=record_id).update(status_code=status, body=body)


def _release(*, record_id: int) -> None:
    IdempotencyRecord.objects.filter(pk=record_id, status_code=None).delete()


def fingerprint(request_parts: Any) -> str:
    """SHA-256 of the request's parts (JSON, keys sorted): the same request always has the same fingerprint."""
    return hashlib.sha256(json.dumps(request_parts, sort_keys=True, default=str).encode()).hexdigest()


async def aidempotent(
    *, user: User, key: str | None, fingerprint_of: Any, run: Callable[[], Awaitable[tuple[int, Any]]]
) -> tuple[int, Any]:
    """Run `run` once per (user, key) and return its (status, JSON body); later copies get the same answer.

    An error from `run` stores nothing, so the key is free to try again.
    """
    if not key:
        return await run()
    claimed = await atomic_phase(_claim)(user_id=user.pk, key=key[:255], fingerprint=fingerprint(fingerprint_of))
    if isinstance(claimed, _Replay):
        return claimed.status, claimed.body
    try:
        status, body = await run()
    except TimeoutError:
        # The operation outlived the request's deadline and finishes on its own: the key stays in flight.
        raise
    except Exception:
        await atomic_phase(_release)(record_id=claimed)
        raise
    # Cancelled (the client went away): the operation finishes on its own; the key stays in flight
    # until IDEMPOTENCY_IN_FLIGHT_SECONDS, then a retry runs it again and finds it done.
    await atomic_phase(_store)(record_id=claimed, status=status, body=body)
    return status, body
