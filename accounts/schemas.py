from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field, StrictInt

from accounts.models import Role
from marketplace.schemas import Currency, CurrencyCode, EmailStr, PatchIn, Skill, StrictIn, TimeZoneName


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
    currency: CurrencyCode
    weekly_hours_available: int
    time_zone: str
    years_experience: int


class MeOut(Schema):
    id: int
    email: str
    full_name: str
    role: Role | None = Field(description="null for staff, who have no marketplace role")
    is_staff: bool
    client_profile: ClientProfileOut | None
    engineer_profile: EngineerProfileOut | None

    @staticmethod
    def resolve_role(user: Any) -> str | None:
        return user.role or None

    # A user has at most one of the two profiles; the missing one reads as null.
    @staticmethod
    def resolve_client_profile(obj: object) -> object:
        return getattr(obj, "client_profile", None)

    @staticmethod
    def resolve_engineer_profile(obj: object) -> object:
        return getattr(obj, "engineer_profile", None)


class ClientProfileIn(PatchIn):
    """Exactly the fields a client may change; omit a field to keep it."""

    company: str | None = Field(default=None, max_length=200)
    time_zone: TimeZoneName | None = None


class EngineerProfileIn(PatchIn):
    """Exactly the fields an engineer may change; omit a field to keep it."""

    headline: str | None = Field(default=None, max_length=200)
    skills: list[Skill] | None = Field(default=None, max_length=40)
    hourly_rate_minor: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    currency: Currency | None = None
    weekly_hours_available: StrictInt | None = Field(default=None, ge=0, le=80)
    time_zone: TimeZoneName | None = None
    years_experience: StrictInt | None = Field(default=None, ge=0, le=70)
