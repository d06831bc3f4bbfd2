"""The API's one way to page a list: an opaque cursor and a bounded limit.

Every list answers `{"items": [...], "next_cursor": "..." | null, "has_more": bool}`
and, when there is a next page, a `Link: <...>; rel="next"` header (RFC 8288).
Pass `next_cursor` back as `cursor` to get the page after.

The cursor is keyset pagination: it holds the ordering values of the last item
sent (for "newest first", its `created_at` and `id`), and the next page is the
rows strictly after that key. So it costs one index range scan however deep you
go, and rows added while you page never shift the pages: every row that existed
when you started is seen exactly once. A row added ahead of the cursor (a newer
one in a newest-first list) is not in this walk; one added behind it (a new
message in an oldest-first list) is.

The ordering is the queryset's own `order_by`, whose last field must be unique
(`id`), so the key is total. The cursor is signed (django.core.signing) with the
list's path as salt: one from another list or another object's list, edited, or
made up is refused with 422, so what reaches the query is only a key we wrote.
"""

import base64
import binascii
import functools
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signing import BadSignature, Signer
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.errors import ValidationError
from ninja.pagination import PaginationBase

MAX_CURSOR_LENGTH = 1024
MAX_KEY_INT = 2**63 - 1  # a bigint; no key we sort by is wider
NEXT_LINK_ATTRIBUTE = "vetted_next_link"


def _invalid_cursor(message: str = "not a cursor from this list; pass next_cursor as it was given") -> ValidationError:
    return ValidationError([{"loc": ("query", "cursor"), "msg": message, "type": "invalid_cursor"}])


def ordering_of(queryset: QuerySet[Any]) -> list[tuple[str, bool]]:
    """The queryset's ordering as `[(field name, descending)]`; the last must be `id` or `pk`.

    Raises ValueError (a programming error, not the caller's) for expressions or a non-unique tail.
    """
    fields: list[tuple[str, bool]] = []
    for entry in queryset.query.order_by:
        if not isinstance(entry, str):
            raise ValueError(f"keyset pagination needs plain field names in order_by, not {entry!r}")
        fields.append((entry.lstrip("-"), entry.startswith("-")))
    if not fields or fields[-1][0] not in ("id", "pk"):
        raise ValueError(f"keyset pagination needs an order_by ending in id, got {queryset.query.order_by!r}")
    return fields


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _to_python(queryset: QuerySet[Any], name: str, raw: Any) -> Any:
    if not isinstance(raw, str | int) or isinstance(raw, bool) or (isinstance(raw, int) and abs(raw) > MAX_KEY_INT):
        raise _invalid_cursor()
    if isinstance(raw, str) and ("\x00" in raw or any(0xD800 <= ord(c) <= 0xDFFF for c in raw)):
        raise _invalid_cursor()  # PostgreSQL cannot compare with text it cannot store
    annotation = queryset.query.annotations.get(name)
    try:
        field = annotation.output_field if annotation is not None else queryset.model._meta.get_field(name)
    except FieldDoesNotExist:
        field = queryset.model._meta.pk
    try:
        return field.to_python(raw)
    except (DjangoValidationError, TypeError, ValueError):
        raise _invalid_cursor() from None


def _signer(list_path: str) -> Signer:
    # Salted with the list's path: a cursor is valid only for the list (and the object) that made it.
    return Signer(salt=f"vetted.cursor:{list_path}")


def encode_cursor(ordering: list[tuple[str, bool]], item: Any, *, list_path: str) -> str:
    """The opaque cursor after `item`: its ordering key as JSON, URL-safe base64, signed for `list_path`."""
    key = {"o": [("-" if desc else "") + name for name, desc in ordering], "v": []}
    for name, _ in ordering:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name)
        key["v"].append(_to_json(value))
    payload = base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")
    return _signer(list_path).sign(payload)


def decode_cursor(
    cursor: str, ordering: list[tuple[str, bool]], queryset: QuerySet[Any], *, list_path: str
) -> list[Any]:
    """The ordering values a cursor holds. Raises ninja's ValidationError (422) for a cursor this list did
    not make: another list's, an edited one, or one made up (Django's signing, keyed by SECRET_KEY)."""
    try:
        payload = _signer(list_path).unsign(cursor)
        key = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (BadSignature, binascii.Error, ValueError):
        raise _invalid_cursor() from None
    if not isinstance(key, dict):
        raise _invalid_cursor()
    expected = [("-" if desc else "") + name for name, desc in ordering]
    values = key.get("v")
    if key.get("o") != expected or not isinstance(values, list) or len(values) != len(ordering):
        raise _invalid_cursor()
    return [_to_python(queryset, name, raw) for (name, _), raw in zip(ordering, values, strict=True)]


def after_key(ordering: list[tuple[str, bool]], values: list[Any]) -> Q:
    """Rows strictly after `values` in `ordering`: (a > x) or (a = x and b > y) or ..., per field direction."""
    condition = Q()
    for index, (name, descending) in enumerate(ordering):
        step = Q(**{f"{name}__{'lt' if descending else 'gt'}": values[index]})
        for earlier, (earlier_name, _) in enumerate(ordering[:index]):
            step &= Q(**{earlier_name: values[earlier]})
        condition |= step
    return condition


def _next_link(request: HttpRequest, cursor: str) -> str:
    params = [(key, value) for key, value in request.GET.items() if key != "cursor"]
    params.append(("cursor", cursor))
    return request.build_absolute_uri(f"{request.path}?{urlencode(params)}")


class CursorPagination(PaginationBase):
    """Keyset pagination over a QuerySet ordered by fields ending in `id` (see the module's docstring)."""

    class Input(Schema):
        limit: int = Field(
            settings.NINJA_PAGINATION_PER_PAGE,
            ge=1,
            le=settings.NINJA_PAGINATION_MAX_LIMIT,
            description="How many items, 1 to 100.",
        )
        cursor: str | None = Field(
            None,
            max_length=MAX_CURSOR_LENGTH,
            pattern=r"^[A-Za-z0-9_:-]+$",
            description="`next_cursor` from the previous page; leave out for the first page.",
        )

    class Output(Schema):
        items: list[Any]
        next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
        has_more: bool

    items_attribute = "items"

    def paginate_queryset(self, queryset: QuerySet[Any], pagination: Any, request: HttpRequest, **params: Any) -> Any:
        ordering = ordering_of(queryset)
        if pagination.cursor:
            values = decode_cursor(pagination.cursor, ordering, queryset, list_path=request.path)
            queryset = queryset.filter(after_key(ordering, values))
        rows = list(queryset[: pagination.limit + 1])
        has_more = len(rows) > pagination.limit
        page = rows[: pagination.limit]
        next_cursor = encode_cursor(ordering, page[-1], list_path=request.path) if has_more else None
        if next_cursor is not None:
            # VettedAPI.create_response turns it into the Link header.
            setattr(request, NEXT_LINK_ATTRIBUTE, _next_link(request, next_cursor))
        return {"items": page, "next_cursor": next_cursor, "has_more": has_more}


def each_page[F: Callable[..., Any]](load: Callable[[HttpRequest, list[Any]], None]) -> Callable[[F], F]:
    """Run `load(request, items)` once on every page a paginated view answers, before it is serialised.

    For what the rows show that one query per row would otherwise fetch: `load` reads it for the
    whole page at once and sets it on the items. Goes between the route and `@paginate`:

        @router.get("/things", response=list[ThingOut])
        @each_page(attach_owners)
        @paginate
        def things(request): ...

    `functools.wraps` carries over what `@paginate` contributes to the operation (its query
    parameters and paged response), so ninja sees the same view.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def paged(request: HttpRequest, **kwargs: Any) -> Any:
            result = view(request, **kwargs)
            load(request, result[CursorPagination.items_attribute])
            return result

        return paged  # type: ignore[return-value]

    return decorate
