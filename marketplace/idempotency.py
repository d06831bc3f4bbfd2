"""Our own API's Idempotency-Key header: a retried request replays the first answer instead of acting again.

As Stripe's (https://docs.stripe.com/api/idempotent_requests): the key is the
caller's, scoped to the user, 1 to 255 printable ASCII characters (anything else
is refused with 422 `invalid_idempotency_key`, never cut); the same key on another
request (method, path or body) is refused (409 `idempotency_key_reused`); a copy
arriving while the first still runs is refused (409 `idempotency_key_in_flight`,
with Retry-After); a replay carries `Idempotent-Replayed: true`. A key is kept for
IDEMPOTENCY_KEY_TTL_SECONDS (Stripe: 24 hours); past that it is forgotten, and a
request with it runs afresh, whether or not the purge has deleted its record yet.

A key whose request died (its process killed) holds no answer; once it has been
locked longer than IDEMPOTENCY_IN_FLIGHT_SECONDS the next request takes it over
and runs. That is safe because every operation behind a key is itself idempotent
(money steps replay their own Stripe keys). An error answer is not stored, unlike
Stripe's 500s: the key is free again and a retry runs the operation again.

Operations opt in with `@accepts_idempotency_key`; `honour_idempotency_keys(api)`
then declares the header in the OpenAPI document and wraps their views.
"""

import contextlib
import functools
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import NinjaAPI

from accounts.models import User
from marketplace.auth import current_user
from marketplace.db import atomic_phase
from marketplace.errors import DomainError
from marketplace.models import IdempotencyRecord

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255  # Stripe's limit, and IdempotencyRecord.key's


class InvalidIdempotencyKey(DomainError):
    code = "invalid_idempotency_key"
    status = 422
    default_detail = (
        "An Idempotency-Key is 1 to 255 printable ASCII characters, without commas or a space at either end."
    )
    default_field = KEY_HEADER


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 409
    default_detail = "This Idempotency-Key was used with a different request."


class IdempotencyKeyInFlight(DomainError):
    code = "idempotency_key_in_flight"
    status = 409
    default_detail = "A request with this Idempotency-Key is still running; retry in a moment."
    retry_after = 1


class Answer(NamedTuple):
    """An operation's answer: HTTP status, JSON body, and whether it is a stored one replayed."""

    status: int
    body: Any
    replayed: bool = False


def _window() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)


def _claim(*, user_id: int, key: str, fingerprint: str) -> int | Answer:
    """The record to fill (its id), or the answer to replay. Raises IdempotencyKeyReused or IdempotencyKeyInFlight."""
    # A unique (user, key) insert is the claim: exactly one concurrent request wins it.
    with contextlib.suppress(IntegrityError), transaction.atomic():
        return IdempotencyRecord.objects.create(user_id=user_id, key=key, fingerprint=fingerprint).pk
    existing = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
    if existing is None:
        # The request that held it failed and gave it back (or the purge deleted it) between our insert and this read.
        raise IdempotencyKeyInFlight()
    now = timezone.now()
    if existing.created_at < now - _window():
        # Forgotten: past the window the key is new again. Compare-and-set on created_at, so one request renews it.
        renewed = IdempotencyRecord.objects.filter(pk=existing.pk, created_at=existing.created_at).update(
            fingerprint=fingerprint, status_code=None, body=None, created_at=now, locked_at=now
        )
        if renewed != 1:
            raise IdempotencyKeyInFlight()
        return existing.pk
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if existing.status_code is not None:
        return Answer(existing.status_code, existing.body, replayed=True)
    abandoned_before = now - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)
    taken = IdempotencyRecord.objects.filter(pk=existing.pk, status_code=None, locked_at__lt=abandoned_before).update(
        locked_at=now
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


def request_parts(request: HttpRequest) -> list[Any]:
    """What makes two requests the same one: method, path with query, and the body (parsed, so key order is moot).

    An empty body is the same as `{}`; a body that is not JSON counts as its text.
    """
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = request.body.decode(errors="replace")
    return [request.method, request.get_full_path(), body]


def key_of(request: HttpRequest) -> str | None:
    """The request's Idempotency-Key, or None when it sends none.

    Raises InvalidIdempotencyKey for an empty or over-long key (Stripe: at most 255
    characters), one with a character outside printable ASCII (space to `~`), or one
    that starts or ends with a space (HTTP trims those: RFC 9110, section 5.5), or one
    with a comma (two Idempotency-Key headers arrive as one value joined by a comma,
    RFC 9110 section 5.3: a key we cannot tell apart from two is refused).
    """
    key = request.headers.get(KEY_HEADER)
    if key is None:
        return None
    printable = all(" " <= c <= "~" and c != "," for c in key)
    if not 1 <= len(key) <= KEY_MAX_LENGTH or key != key.strip(" ") or not printable:
        raise InvalidIdempotencyKey()
    return key


async def aidempotent(
    *, user: User, key: str | None, fingerprint_of: Any, run: Callable[[], Awaitable[tuple[int, Any]]]
) -> Answer:
    """Run `run` once per (user, key) and return its (status, JSON body); later copies get the same answer, replayed.

    `key` is already valid (`key_of`). An error from `run` stores nothing, so the key
    is free to try again. Each database step is its own short transaction
    (`atomic_phase`): nothing is held while `run` waits on the network.
    """
    if key is None:
        return Answer(*await run())
    claimed = await atomic_phase(_claim)(user_id=user.pk, key=key, fingerprint=fingerprint(fingerprint_of))
    if isinstance(claimed, Answer):
        return claimed
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
    return Answer(status, body)


def idempotent(*, user: User, key: str | None, fingerprint_of: Any, run: Callable[[], tuple[int, Any]]) -> Answer:
    """`aidempotent` for a sync operation: the claim, `run` and the store are each their own transaction.

    So a retry arriving while `run` works sees the key in flight, not a lock wait.
    """
    if key is None:
        return Answer(*run())
    with transaction.atomic():
        claimed = _claim(user_id=user.pk, key=key, fingerprint=fingerprint(fingerprint_of))
    if isinstance(claimed, Answer):
        return claimed
    try:
        status, body = run()
    except Exception:
        _release(record_id=claimed)
        raise
    _store(record_id=claimed, status=status, body=body)
    return Answer(status, body)


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Delete records older than IDEMPOTENCY_KEY_TTL_SECONDS; returns how many.

    Their keys are already forgotten (`_claim` renews an expired record); this only
    bounds the table. A record that old is answered or abandoned, never running:
    the settings keep the window longer than IDEMPOTENCY_IN_FLIGHT_SECONDS.
    """
    expired_before = (now or timezone.now()) - _window()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=expired_before).delete()
    return deleted


# --- The HTTP contract: which operations take the header, and how their views honour it ---------------

_ACCEPTS = "_accepts_idempotency_key"

# Printable ASCII, with no space at either end.
# No comma: two Idempotency-Key headers arrive joined by one (RFC 9110 §5.3), and must not pass as one key.
KEY_PATTERN = "^[\\x21-\\x2B\\x2D-\\x7E]([\\x20-\\x2B\\x2D-\\x7E]*[\\x21-\\x2B\\x2D-\\x7E])?$"
KEY_PARAMETER = {
    "name": KEY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Send a unique value (a UUID) to make a retry safe: the same key and request within 24 hours replay the "
        "first answer, marked `Idempotent-Replayed: true`, instead of acting again. 1 to 255 printable ASCII "
        "characters, not starting or ending with a space. See docs/api.md, Idempotency."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH, "pattern": KEY_PATTERN},
}
REPLAYED_HEADER_SCHEMA = {
    "description": "`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",
    "schema": {"type": "string", "enum": ["true"]},
}


def accepts_idempotency_key[F: Callable[..., Any]](view: F) -> F:
    """Mark a view (under its `@router.post`) as honouring Idempotency-Key; `honour_idempotency_keys` does the rest."""
    setattr(view, _ACCEPTS, True)
    return view


def _honouring(operation: Any, ninja_api: NinjaAPI, view: Callable[..., Any]) -> Callable[..., Any]:
    def answer_of(request: HttpRequest, result: Any) -> tuple[int, Any]:
        # Serialised exactly as ninja would have answered; stored as JSON (jsonb: a replay's keys may come in
        # another order, its values are the same).
        response = operation._result_to_response(request, result, ninja_api.create_temporal_response(request))
        return response.status_code, json.loads(response.content) if response.content else None

    def respond(request: HttpRequest, answer: Answer) -> HttpResponse:
        response = ninja_api.create_response(request, answer.body, status=answer.status)
        if answer.replayed:
            response[REPLAYED_HEADER] = "true"
        return response

    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_honouring(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            key = key_of(request)
            if key is None:
                return await view(request, *args, **kwargs)

            async def run() -> tuple[int, Any]:
                return answer_of(request, await view(request, *args, **kwargs))

            answer = await aidempotent(
                user=current_user(request), key=key, fingerprint_of=request_parts(request), run=run
            )
            return respond(request, answer)

        return async_honouring

    @functools.wraps(view)
    def honouring(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        key = key_of(request)
        if key is None:
            return view(request, *args, **kwargs)
        answer = idempotent(
            user=current_user(request),
            key=key,
            fingerprint_of=request_parts(request),
            run=lambda: answer_of(request, view(request, *args, **kwargs)),
        )
        return respond(request, answer)

    return honouring


def honour_idempotency_keys(ninja_api: NinjaAPI) -> None:
    """Every operation marked `@accepts_idempotency_key` declares the header (and the replay header) and honours it.

    Run before the API's URLs are built: ninja serves clones of these template
    operations, which copy the wrapped view and the OpenAPI additions.
    """
    for _, router in ninja_api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                if not getattr(operation.view_func, _ACCEPTS, False):
                    continue
                # The template serialises the answer; its served clone has the same response models.
                operation.api = ninja_api
                operation.view_func = _honouring(operation, ninja_api, operation.view_func)
                extra = dict(operation.openapi_extra or {})
                extra["parameters"] = [*extra.get("parameters", []), KEY_PARAMETER]
                successes = {
                    status: {"headers": {REPLAYED_HEADER: REPLAYED_HEADER_SCHEMA}}
                    for status in operation.response_models
                    if isinstance(status, int) and 200 <= status < 300
                }
                extra["responses"] = {**successes, **extra.get("responses", {})}
                operation.openapi_extra = extra
