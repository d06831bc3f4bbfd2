from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet

from accounts.models import ApiToken, ClientProfile, EngineerProfile, User
from marketplace.rows import Columns

# `GET /api/me` and every login answer with these: written out once, as the token lookup is
# (marketplace.rows; docs/benchmarks.md, "API speed"). The QuerySet it stands for:
# User.objects.select_related("client_profile", "engineer_profile").get(pk=user_id)
_USER = Columns(User, "u")
_CLIENT_PROFILE = Columns(ClientProfile, "cp")
_ENGINEER_PROFILE = Columns(EngineerProfile, "ep")


def _user_with_profiles_sql(connection: BaseDatabaseWrapper) -> str:
    return (
        f"SELECT {_USER.select(connection)}, {_CLIENT_PROFILE.select(connection)},"  # noqa: S608 - names from the models
        f" {_ENGINEER_PROFILE.select(connection)}"
        f" FROM {User._meta.db_table} u"
        f" LEFT JOIN {ClientProfile._meta.db_table} cp ON cp.user_id = u.id"
        f" LEFT JOIN {EngineerProfile._meta.db_table} ep ON ep.user_id = u.id"
        " WHERE u.id = %s"
    )


def user_with_profiles(*, user_id: int) -> User:
    """The user with both profile relations loaded (a missing one reads as absent, not as a query).

    Raises User.DoesNotExist for an unknown id.
    """
    connection = connections[router.db_for_read(User)]
    with connection.cursor() as cursor:
        cursor.execute(_user_with_profiles_sql(connection), [user_id])
        row = cursor.fetchone()
    user = _USER.build(row, connection) if row is not None else None
    if user is None:
        raise User.DoesNotExist(f"No user {user_id}.")
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
