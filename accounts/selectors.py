from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet

from accounts.models import ApiToken, ClientProfile, EngineerProfile, User
from marketplace.rows import Columns, per_vendor

# `GET /api/me` and every login answer with these: written out once, as the token lookup is
# (marketplace.rows; docs/benchmarks.md, "API speed"). The QuerySet it stands for:
# User.objects.select_related("client_profile", "engineer_profile").get(pk=user_id)
_USER = Columns(User, "u")
_CLIENT_PROFILE = Columns(ClientProfile, "cp")
_ENGINEER_PROFILE = Columns(EngineerProfile, "ep")


def profiles_select(connection: BaseDatabaseWrapper) -> str:
    """The columns of both profiles, client's first, for a statement that joins them with `profiles_join`."""
    return f"{_CLIENT_PROFILE.select(connection)}, {_ENGINEER_PROFILE.select(connection)}"


def profiles_join(connection: BaseDatabaseWrapper) -> str:
    """LEFT JOINs of both profiles onto the user aliased `u` (a user has either, both or none)."""
    client, engineer, user = _CLIENT_PROFILE, _ENGINEER_PROFILE, _USER
    return (
        f" LEFT JOIN {client.table(connection)}"
        f" ON {client.column(connection, 'user')} = {user.column(connection, 'id')}"
        f" LEFT JOIN {engineer.table(connection)}"
        f" ON {engineer.column(connection, 'user')} = {user.column(connection, 'id')}"
    )


def profiles_attach(user: User, values: Sequence[Any], connection: BaseDatabaseWrapper) -> None:
    """Cache on `user` the profiles read by `profiles_select` (`values`: those columns of the row), as
    select_related would: the reverse one-to-one cached, None included, and each profile's user."""
    rest = values
    for relation, columns in (("client_profile", _CLIENT_PROFILE), ("engineer_profile", _ENGINEER_PROFILE)):
        profile = columns.build(rest, connection)
        rest = rest[len(columns) :]
        User._meta.get_field(relation).set_cached_value(user, profile)  # type: ignore[union-attr]
        if profile is not None:
            type(profile)._meta.get_field("user").set_cached_value(profile, user)


def profiles_loaded(user: User) -> bool:
    """Whether both profile relations are cached on `user` (`profiles_attach`), so reading them costs no query."""
    return all(User._meta.get_field(name).is_cached(user) for name in ("client_profile", "engineer_profile"))  # type: ignore[union-attr]


@per_vendor
def _user_with_profiles_sql(connection: BaseDatabaseWrapper) -> str:
    user = _USER
    return (
        f"SELECT {user.select(connection)}, {profiles_select(connection)}"  # noqa: S608 - names from the models, quoted
        f" FROM {user.table(connection)}{profiles_join(connection)}"
        f" WHERE {user.column(connection, 'id')} = %s"
    )


def user_with_profiles(*, user_id: int) -> User:
    """The user with both profile relations loaded (a missing one reads as absent, not as a query).

    Raises User.DoesNotExist for an unknown id.
    """
    connection = connections[router.db_for_read(User)]
    with connection.cursor() as cursor:
        cursor.execute(_user_with_profiles_sql(connection), [user_id])
        row = cursor.fetchone()
    if row is None:
        raise User.DoesNotExist(f"No user {user_id}.")
    user = _USER.build(row, connection)
    assert user is not None  # noqa: S101 - the row is the user's, found by its primary key
    profiles_attach(user, row[len(_USER) :], connection)
    return user


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
