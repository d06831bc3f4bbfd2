"""Writes for accounts: registration, API tokens and profile edits."""

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from accounts import selectors
from accounts.errors import EmailTaken, InvalidProfile, ProfileNotFound, TokenNotFound, WeakPassword
from accounts.models import ApiToken, ClientProfile, EngineerProfile, Role, User
from marketplace.notifications import notify_user
from marketplace.realtime import credentials_ended
from marketplace.rows import Columns, per_vendor
from marketplace.schemas import SUPPORTED_CURRENCIES
from marketplace.skills import normalize_skills
from marketplace.timezones import is_time_zone, utc_offset_minutes

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "vt_"  # noqa: S105 - a public marker, not a secret


def user_register(*, email: str, password: str, role: Role, full_name: str = "") -> User:
    """Create a client or engineer with an empty profile, and send the welcome mail after commit."""
    from accounts import tasks

    email = email.strip().lower()
    candidate = User(email=email, full_name=full_name, role=role)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise WeakPassword(" ".join(exc.messages)) from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, full_name=full_name, role=role)
            if role == Role.CLIENT:
                ClientProfile.objects.create(user=user)
            else:
                EngineerProfile.objects.create(user=user)
            tasks.user_send_welcome.delay_on_commit(user.pk)
    except IntegrityError:
        raise EmailTaken() from None
    logger.info("user.registered", extra={"user_id": user.pk, "role": role})
    return user


def user_send_welcome(*, user_id: int) -> bool:
    """Send the welcome mail at most once: claimed by compare-and-set on `welcome_sent_at`."""
    claimed = User.objects.filter(pk=user_id, welcome_sent_at=None).update(welcome_sent_at=timezone.now()) == 1
    if not claimed:
        return False
    user = User.objects.get(pk=user_id)
    try:
        _send_welcome_mail(user)
    except OSError:
        # Give the claim back so the task's retry can send it.
        User.objects.filter(pk=user_id).update(welcome_sent_at=None)
        raise
    logger.info("user.welcome_sent", extra={"user_id": user_id})
    return True


WELCOME_SWEEP_AFTER = timedelta(minutes=2)
WELCOME_SWEEP_WITHIN = timedelta(days=2)


def welcome_mails_sweep(*, now: datetime | None = None) -> int:
    """Send the welcome mails whose task was lost (the broker was down at registration). Returns how many.

    Looks at clients and engineers who joined between WELCOME_SWEEP_WITHIN (2 days) and
    WELCOME_SWEEP_AFTER (2 minutes, long enough for the task and its retries) ago and
    still have no `welcome_sent_at`. Each send is claimed as in `user_send_welcome`,
    so the sweep racing a late task sends one mail.
    """
    now = now or timezone.now()
    waiting = User.objects.filter(
        welcome_sent_at=None,
        role__in=Role.values,
        date_joined__lte=now - WELCOME_SWEEP_AFTER,
        date_joined__gte=now - WELCOME_SWEEP_WITHIN,
    ).values_list("pk", flat=True)
    sent = 0
    for user_id in waiting:
        try:
            sent += user_send_welcome(user_id=user_id)
        except OSError:
            logger.warning("user.welcome_failed", extra={"user_id": user_id})  # the next sweep tries again
    return sent


def _send_welcome_mail(user: User) -> None:
    send_mail(
        subject="Welcome to Vetted",
        message=(
            "Your account is ready.\n\n"
            "Clients: raise a request and we match vetted engineers within eight hours.\n"
            "Engineers: apply for vetting to be matched with clients.\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


def _digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Return the token row and its secret. The secret is not stored and cannot be shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, prefix=raw[:10], digest=_digest(raw))
        # A security email the user cannot turn off: a token they did not make means a stolen password.
        notify_user(
            user_id=user.pk,
            event="api_token.created",
            payload={"token_id": token.pk, "name": name, "prefix": token.prefix},
        )
    logger.info("api_token.created", extra={"user_id": user.pk, "token_id": token.pk})
    return token, raw


# The query every API request makes, written out once: compiling the same statement through the
# QuerySet API costs the ORM more than the database takes to answer it (docs/benchmarks.md, "API
# speed"). marketplace.rows builds the two instances from the row, through the ORM's converters.
_TOKEN_COLUMNS = Columns(ApiToken, "t")
_USER_COLUMNS = Columns(User, "u")


def _token_lookup_sql(connection: BaseDatabaseWrapper, *, with_profiles: bool) -> str:
    token, user = _TOKEN_COLUMNS, _USER_COLUMNS
    profiles = f", {selectors.profiles_select(connection)}" if with_profiles else ""
    joins = selectors.profiles_join(connection) if with_profiles else ""
    return (
        f"SELECT {token.select(connection)}, {user.select(connection)}{profiles}"  # noqa: S608 - names from the models, quoted
        f" FROM {token.table(connection)} JOIN {user.table(connection)}"
        f" ON {user.column(connection, 'id')} = {token.column(connection, 'user')}{joins}"
        f" WHERE {token.column(connection, 'digest')} = %s AND {token.column(connection, 'revoked_at')} IS NULL"
        f" AND {user.column(connection, 'is_active')}"
    )


@per_vendor
def _token_with_user_sql(connection: BaseDatabaseWrapper) -> str:
    return _token_lookup_sql(connection, with_profiles=False)


@per_vendor
def _token_with_user_and_profiles_sql(connection: BaseDatabaseWrapper) -> str:
    return _token_lookup_sql(connection, with_profiles=True)


def api_token_find(raw_token: str, *, with_profiles: bool = False) -> ApiToken | None:
    """The live token (with its active user) behind `raw_token`, or None. Records when it was last used.

    One statement (a token and its user); `last_used_at` is written at most once a minute. With
    `with_profiles`, the same statement also joins the user's two profiles and caches them on the user
    (`selectors.profiles_attach`), for the one endpoint that shows them (`GET /api/me`): the joins cost
    PostgreSQL about 190 µs more a lookup, which no other request should pay (docs/benchmarks.md).
    """
    if not raw_token.startswith(TOKEN_PREFIX):
        return None
    connection = connections[router.db_for_read(ApiToken)]
    sql = _token_with_user_and_profiles_sql(connection) if with_profiles else _token_with_user_sql(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [_digest(raw_token)])
        row = cursor.fetchone()
    if row is None:
        return None
    token = _TOKEN_COLUMNS.build(row, connection)
    user = _USER_COLUMNS.build(row[len(_TOKEN_COLUMNS) : len(_TOKEN_COLUMNS) + len(_USER_COLUMNS)], connection)
    # An inner join: both primary keys are in the row.
    assert token is not None  # noqa: S101
    assert user is not None  # noqa: S101
    if with_profiles:
        selectors.profiles_attach(user, row[len(_TOKEN_COLUMNS) + len(_USER_COLUMNS) :], connection)
    token.user = user
    now = timezone.now()
    # One write a minute at most, not one per request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def api_token_authenticate(raw_token: str, *, with_profiles: bool = False) -> User | None:
    """The active user behind a live token, or None; with `with_profiles`, their profiles read in the same
    statement (`api_token_find`)."""
    token = api_token_find(raw_token, with_profiles=with_profiles)
    return token.user if token is not None else None


def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens; revoking twice keeps the first time."""
    token = ApiToken.objects.filter(pk=token_id, user=user).first()
    if token is None:
        raise TokenNotFound()
    ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    logger.info("api_token.revoked", extra={"user_id": user.pk, "token_id": token.pk})
    # Open websockets that authenticated with this token close too (marketplace.websockets).
    credentials_ended(user_id=user.pk, token_id=token.pk)
    return token


def tokens_purge_revoked(*, older_than: timedelta) -> int:
    deleted, _ = ApiToken.objects.filter(revoked_at__lt=timezone.now() - older_than).delete()
    return deleted


def _check_time_zone(value: str) -> None:
    if not is_time_zone(value):
        raise InvalidProfile(f"time_zone: {value!r} is not an IANA time zone such as Europe/Berlin", field="time_zone")


def client_profile_update(*, user: User, profile_id: int, changes: dict[str, Any]) -> ClientProfile:
    """Apply `changes` (already limited to the writable fields) to the user's own client profile."""
    with transaction.atomic():
        profile = ClientProfile.objects.select_for_update().filter(pk=profile_id, user=user).first()
        if profile is None:
            raise ProfileNotFound()
        if "time_zone" in changes:
            _check_time_zone(changes["time_zone"])
        for field, value in changes.items():
            setattr(profile, field, value)
        profile.save(update_fields=[*changes, "updated_at"])
    return profile


def engineer_profile_update(*, user: User, profile_id: int, changes: dict[str, Any]) -> EngineerProfile:
    """Apply `changes` (already limited to the writable fields) to the user's own engineer profile."""
    with transaction.atomic():
        profile = EngineerProfile.objects.select_for_update().filter(pk=profile_id, user=user).first()
        if profile is None:
            raise ProfileNotFound()
        if "time_zone" in changes:
            _check_time_zone(changes["time_zone"])
            changes["utc_offset_minutes"] = utc_offset_minutes(changes["time_zone"])
        if "skills" in changes:
            try:
                changes["skills"] = normalize_skills(changes["skills"])
            except ValueError as exc:
                raise InvalidProfile(f"skills: {exc}", field="skills") from None
        if "currency" in changes:
            changes["currency"] = changes["currency"].lower()
            if changes["currency"] not in SUPPORTED_CURRENCIES:
                supported = ", ".join(sorted(SUPPORTED_CURRENCIES))
                raise InvalidProfile(
                    f"currency: {changes['currency']!r} is not supported; use one of {supported}", field="currency"
                )
        for field, value in changes.items():
            setattr(profile, field, value)
        profile.save(update_fields=[*changes, "updated_at"])
    return profile


def demo_password() -> str:
    """The password of the demo accounts (development only; refused in production)."""
    if settings.PRODUCTION:
        raise RuntimeError("demo accounts are not created in production")
    return "vetted-demo-pass"
