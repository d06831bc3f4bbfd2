"""The input contract every API body and query shares (docs/api.md, "Input rules").

Endpoints take `StrictIn` (bodies), `PatchIn` (partial updates) or `QueryIn`
(query strings), and type their fields with the annotated types below, so no
endpoint can forget a rule:

- unknown fields are refused (bodies);
- every string, at any depth, refuses NUL and lone surrogates: PostgreSQL cannot
  store them, and a 422 naming the field beats a 500;
- money is a strict integer of minor units (`"100"`, `true` and `100.0` are refused);
- identifiers and cursors are bounded, so no value overflows a database integer;
- time zones are IANA names; dates lie between 2000 and 2099;
- URLs are http(s) only; return URLs must also point at a host we serve;
- a partial update refuses an explicit `null` (omit a field to keep it);
- email addresses are compared in one canonical form (NFKC, trimmed, lower-cased),
  so two spellings of one address can never make two accounts.
"""

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from django.conf import settings
from django.core.validators import validate_email
from django.http.request import split_domain_port, validate_host
from ninja import Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from marketplace.email_addresses import email_key
from marketplace.timezones import PLACES, is_time_zone

# The largest id or cursor the API takes: far beyond any real row, well inside PostgreSQL's bigint.
MAX_ID = 2**53
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2099, 12, 31)
IANA_ZONES = sorted(PLACES)


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


class RowOut(BaseModel):
    """An output schema read straight from a model's attributes, for rows a list endpoint sends by the page.

    ninja's `Schema` reads every attribute through its `DjangoGetter` (for `resolve_*` methods and dotted
    aliases): 509 µs for a page of 20 requests, against 143 µs through pydantic's own `from_attributes`
    (docs/benchmarks.md, "API speed"). A schema that needs a resolver stays a `Schema`.
    """

    model_config = ConfigDict(from_attributes=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        resolvers = [name for name in vars(cls) if name.startswith("resolve_")]
        if resolvers:
            raise TypeError(f"{cls.__name__}: a RowOut does not run {resolvers}; derive from ninja's Schema instead.")


class StrictIn(Schema):
    """A request body: refuses fields it does not list, and unstorable text anywhere in it."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        refuse_unstorable(value)
        return value


def _no_null_in_schema(schema: dict[str, Any]) -> None:
    """The JSON schema of a PatchIn: its fields are optional, never nullable (the document says what is accepted)."""
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if options:
            kept = [option for option in options if option.get("type") != "null"]
            prop.pop("anyOf")
            if len(kept) == 1:
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept
        if prop.get("default", ...) is None:
            prop.pop("default")


class PatchIn(StrictIn):
    """A partial update: omit a field to keep it; an explicit null is refused (it never means "clear")."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_in_schema)

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
    if not is_time_zone(value):
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


def _return_hosts() -> list[str]:
    allowed = list(settings.RETURN_URL_HOSTS) or list(settings.ALLOWED_HOSTS)
    if settings.DEBUG:
        allowed += ["localhost", "127.0.0.1", "[::1]"]
    return allowed


def _return_url_pattern() -> str:
    """A regular expression for the OpenAPI document: http(s) URLs on the hosts a return URL may name."""
    hosts = []
    for host in _return_hosts():
        if host == "*":
            hosts.append(r"[A-Za-z0-9.-]+")
        elif host.startswith("."):
            hosts.append(r"([A-Za-z0-9-]+\.)*" + re.escape(host[1:]))
        else:
            hosts.append(re.escape(host))
    return r"^https?://(" + "|".join(hosts) + r")(:[0-9]{1,5})?(/[^\s]*)?$"


def _return_url(value: str) -> str:
    value = _web_url(value)
    host, _ = split_domain_port(urlsplit(value).netloc.rpartition("@")[2])  # "[::1]" keeps its brackets
    if not validate_host(host, _return_hosts()):
        raise ValueError("a return URL must point at this service (RETURN_URL_HOSTS)")
    return value


# The schema's pattern is the shape Django's validate_email accepts: a dot-atom local part, a dotted domain.
EmailStr = Annotated[
    str,
    Field(
        max_length=254,
        json_schema_extra={
            "format": "email",
            "pattern": r"^[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}$",
        },
    ),
    AfterValidator(canonical_email),
]
# Money in minor units (cents): a strict integer, never a string, a boolean or a float.
MinorUnits = Annotated[StrictInt, Field(ge=0, le=10**12)]
PositiveMinorUnits = Annotated[StrictInt, Field(gt=0, le=10**12)]
# A row id the caller types or sends: positive and bounded.
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
# A seq or cursor: 0 means "from the start". Query strings are text, so `Cursor` parses digits;
# in a JSON body it must be a number (`BodyCursor`).
Cursor = Annotated[int, Field(ge=0, le=MAX_ID)]
BodyCursor = Annotated[StrictInt, Field(ge=0, le=MAX_ID)]
# The schema lists the zones, so a client (or a schema-driven test) knows exactly what is accepted.
TimeZoneName = Annotated[str, Field(max_length=64, json_schema_extra={"enum": IANA_ZONES}), AfterValidator(_iana_zone)]


def _sane_moment(value: datetime) -> datetime:
    if not EARLIEST_DATE.year <= value.year <= LATEST_DATE.year:
        raise ValueError(f"times lie between {EARLIEST_DATE.year} and {LATEST_DATE.year}")
    return value


# A moment with its UTC offset (ISO 8601, 2026-12-01T09:00:00+01:00), in the same years as SaneDate.
# A time without an offset is refused: it would mean a different moment in each zone.
SaneMoment = Annotated[AwareDatetime, AfterValidator(_sane_moment)]

SaneDate = Annotated[
    date,
    # JSON Schema has no range for dates, so the document states a pattern instead: years 2000-2099 and,
    # to stay a subset of what is accepted, days 1-28 (any real date in range is accepted).
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$",
            "description": "An ISO date, YYYY-MM-DD, from 2000-01-01 to 2099-12-31.",
        }
    ),
    AfterValidator(_sane_date),
]
WebUrl = Annotated[
    str,
    Field(max_length=2_000, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?$"),
    AfterValidator(_web_url),
]
ReturnUrl = Annotated[
    str, Field(max_length=2_000, json_schema_extra={"pattern": _return_url_pattern()}), AfterValidator(_return_url)
]

# A skill as typed: what marketplace.skills.normalize_skill accepts (it lower-cases and joins spaces with -).
Skill = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^\s*[A-Za-z0-9][A-Za-z0-9+#.\s-]*$")]

# A currency we quote in (ISO 4217, lower case as Stripe writes it); services check against SUPPORTED_CURRENCIES.
CurrencyCode = Literal["aud", "cad", "chf", "eur", "gbp", "pln", "sek", "usd"]
CURRENCIES = list(get_args(CurrencyCode))
SUPPORTED_CURRENCIES = frozenset(CURRENCIES)


def _supported_currency(value: str) -> str:
    if value.lower() not in CURRENCIES:
        raise ValueError(f"not a currency Vetted quotes in; one of {', '.join(CURRENCIES)}")
    return value.lower()


Currency = Annotated[
    str,
    Field(min_length=3, max_length=3, json_schema_extra={"enum": CURRENCIES + [c.upper() for c in CURRENCIES]}),
    AfterValidator(_supported_currency),
]


class NoteIn(StrictIn):
    """An optional note for the record (a screening note, a submission's message)."""

    note: str = Field(default="", max_length=5_000)


class ReasonIn(StrictIn):
    """A reason the other side reads (a rejection, a revocation, a dispute)."""

    reason: str = Field(min_length=1, max_length=5_000)
