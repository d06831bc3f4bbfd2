from datetime import datetime
from typing import Annotated, Any, Literal

from django.core.validators import validate_email
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, field_validator


def _email(value: str) -> str:
    value = value.strip().lower()
    try:
        validate_email(value)
    except Exception:
        raise ValueError("not a valid email address") from None
    return value


EmailStr = Annotated[str, Field(max_length=254), AfterValidator(_email)]


def _refuse_nul(value: Any) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    if isinstance(value, list | tuple | set):
        for item in value:
            _refuse_nul(item)
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key)
            _refuse_nul(item)


class StrictIn(Schema):
    """An input schema that refuses fields it does not list, instead of silently dropping them.

    It also refuses NUL characters anywhere in the input: PostgreSQL cannot store
    them in text, and a 422 names the field where a 500 would not.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        _refuse_nul(value)
        return value


class RegisterIn(StrictIn):
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)
    role: Literal["client", "engineer"]
    full_name: str = Field(default="", max_length=150)


class LoginIn(StrictIn):
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)


class TokenCreateIn(StrictIn):
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=100)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret. Shown once: only a digest is stored.")


class CsrfOut(Schema):
    csrf_token: str


class ClientProfileOut(Schema):
    id: int
    company: str
    time_zone: str


class EngineerProfileOut(Schema):
    id: int
    headline: str
    skills: list[str]
    hourly_rate_minor: int
    currency: str
    weekly_hours_available: int
    time_zone: str
    years_experience: int


class MeOut(Schema):
    id: int
    email: str
    full_name: str
    role: str
    is_staff: bool
    client_profile: ClientProfileOut | None
    engineer_profile: EngineerProfileOut | None

    # A user has at most one of the two profiles; the missing one reads as null.
    @staticmethod
    def resolve_client_profile(obj: object) -> object:
        return getattr(obj, "client_profile", None)

    @staticmethod
    def resolve_engineer_profile(obj: object) -> object:
        return getattr(obj, "engineer_profile", None)


class ClientProfileIn(StrictIn):
    """Exactly the fields a client may change."""

    company: str | None = Field(default=None, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64)


class EngineerProfileIn(StrictIn):
    """Exactly the fields an engineer may change."""

    headline: str | None = Field(default=None, max_length=200)
    skills: list[str] | None = Field(default=None, max_length=100)
    hourly_rate_minor: int | None = Field(default=None, ge=0, le=10_000_000)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    weekly_hours_available: int | None = Field(default=None, ge=0, le=80)
    time_zone: str | None = Field(default=None, max_length=64)
    years_experience: int | None = Field(default=None, ge=0, le=70)
