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


@per_vendor
def _user_with_profiles_sql(connection: BaseDatabaseWrapper) -> str:
    user, client, engineer = _USER, _CLIENT_PROFILE, _ENGINEER_PROFILE
    return (
        f"SELECT {user.select(connection)}, {client.select(connection)}, {engineer.select(connection)}"  # noqa: S608 - names from the models, quoted
        f" FROM {user.table(connection)}"
        f" LEFT JOIN {client.table(connection)}"
        f" ON {client.column(connection, 'user')} = {user.column(connection, 'id')}"
        f" LEFT JOIN {engineer.table(connection)}"
        f" ON {engineer.column(connection, 'user')} = {user.column(connection, 'id')}"
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
    rest = row[len(_USER) :]
    for relation, columns in (("client_profile", _CLIENT_PROFILE), ("engineer_profile", _ENGINEER_PROFILE)):
        profile = columns.build(rest, connection)
        rest = rest[len(columns) :]
        # What select_related leaves: the reverse one-to-one cached (None included), and the profile's user.
        User._meta.get_field(relation).set_cached_value(user, profile)  # type: ignore[union-attr]
        if profile is not None:
            type(profile)._meta.get_field("user").set_cached_value(profile, user)
    return user


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
