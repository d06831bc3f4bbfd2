"""The input contract every API body and query shares (docs/api.md, "Input rules").

Endpoints take `StrictIn` (bodies), `PatchIn` (partial updates) or `QueryIn`
(query strings), and type their fields with the annotated types below, so no
endpoint can forget a rule:

- unknown fields are refused (bodies);
- every string, at any depth, refuses NUL and lone surrogates: PostgreSQL cannot
  store them, and a 422 naming the field beats a 500;
- money is a strict integer of minor units (`"100"`, `true` and `100.0` are refused);
- identifiers and cursors are bounded, so no value overflows a database integer;
- time zones are IANA names; dates lie between 2000 and 2100;
- URLs are http(s) only; return URLs must also point at a host we serve;
- a partial update refuses an explicit `null` (omit a field to keep it);
- email addresses are compared in one canonical form (NFKC, trimmed, lower-cased),
  so two spellings of one address can never make two accounts.
"""

import zoneinfo
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.validators import validate_email
from django.http.request import validate_host
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, StrictInt, field_validator, model_validator

from accounts.models import email_key

# The largest id or cursor the API takes: far beyond any real row, well inside PostgreSQL's bigint.
MAX_ID = 2**53
# Zone names the tz database ships that are not places: refused as a person's working time zone.
_NOT_PLACES = {"localtime", "posixrules", "Factory"}
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2100, 12, 31)


def refuse_unstorable(value: Any) -> None:
    """Raise ValueError if any string in `value` (nested lists and dicts included) has NUL or a lone surrogate."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL (\\u0000) characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, list | tuple | set):
        for item in value:
            refuse_unstorable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_unstorable(key)
            refuse_unstorable(item)


class StrictIn(Schema):
    """A request body: refuses fields it does not list, and unstorable text anywhere in it."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        refuse_unstorable(value)
        return value


class PatchIn(StrictIn):
    """A partial update: omit a field to keep it; an explicit null is refused (it never means "clear")."""

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(str(key) for key, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"omit a field to keep it; null is not a value here: {', '.join(nulls)}")
        return data


class QueryIn(Schema):
    """Query-string parameters: unstorable text is refused like in bodies (unknown parameters are ignored)."""

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        refuse_unstorable(value)
        return value


def canonical_email(value: str) -> str:
    """The one form an email address is stored and compared in: NFKC, trimmed, lower-cased.

    Raises ValueError when it is not an address (Django's validate_email).
    """
    value = email_key(value)
    try:
        validate_email(value)
    except Exception:
        raise ValueError("not a valid email address") from None
    return value


def _iana_zone(value: str) -> str:
    if value in _NOT_PLACES or value.startswith(("posix/", "right/")) or value not in zoneinfo.available_timezones():
        raise ValueError("not an IANA time zone name, such as Europe/Berlin or America/New_York")
    return value


def _sane_date(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"dates lie between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}")
    return value


def _web_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http or https URL with a host")
    return value.strip()


def _return_url(value: str) -> str:
    value = _web_url(value)
    host = urlsplit(value).hostname or ""
    allowed = list(settings.RETURN_URL_HOSTS) or list(settings.ALLOWED_HOSTS)
    if settings.DEBUG:
        allowed += ["localhost", "127.0.0.1", "[::1]"]
    if not validate_host(host, allowed):
        raise ValueError("a return URL must point at this service (RETURN_URL_HOSTS)")
    return value


EmailStr = Annotated[str, Field(max_length=254), AfterValidator(canonical_email)]
# Money in minor units (cents): a strict integer, never a string, a boolean or a float.
MinorUnits = Annotated[StrictInt, Field(ge=0, le=10**12)]
PositiveMinorUnits = Annotated[StrictInt, Field(gt=0, le=10**12)]
# A row id the caller types or sends: positive and bounded.
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
# A seq or cursor: 0 means "from the start". Query strings are text, so `Cursor` parses digits;
# in a JSON body it must be a number (`BodyCursor`).
Cursor = Annotated[int, Field(ge=0, le=MAX_ID)]
BodyCursor = Annotated[StrictInt, Field(ge=0, le=MAX_ID)]
TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_iana_zone)]
SaneDate = Annotated[date, AfterValidator(_sane_date)]
WebUrl = Annotated[str, Field(max_length=2_000), AfterValidator(_web_url)]
ReturnUrl = Annotated[str, Field(max_length=2_000), AfterValidator(_return_url)]
