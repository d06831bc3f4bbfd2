"""A connection lost to a restarting PostgreSQL is a 503 with Retry-After, told apart from a busy pool and from bugs.

tests/marketplace/test_postgres_restart_live.py restarts a real server under load.
"""

import django.db
import psycopg
import psycopg.errors
import pytest
from django.db.utils import DatabaseErrorWrapper
from django.test import Client
from psycopg_pool import PoolTimeout

from marketplace.db import DatabaseBusy, DatabaseUnavailable, RowLocked, classify
from tests.factories import StaffFactory


class _PsycopgBackend:
    """What Django's DatabaseErrorWrapper reads from a backend: its driver, and where it records an error."""

    Database = psycopg
    errors_occurred = False


def _as_django_raises(error: Exception) -> Exception:
    """`error` as Django re-raises it: a django.db error of the same name, caused by psycopg's."""
    try:
        with DatabaseErrorWrapper(_PsycopgBackend()):
            raise error
    except django.db.DatabaseError as wrapped:
        return wrapped
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # pg_ctl stop -m fast ends every session with 57P01; a crash ends them with 57P02.
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), DatabaseUnavailable),
        (psycopg.errors.CrashShutdown("terminating connection because of crash"), DatabaseUnavailable),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), DatabaseUnavailable),
        # psycopg's own: the socket closed under a query, or a connection attempt refused.
        (psycopg.OperationalError("consuming input failed: server closed the connection"), DatabaseUnavailable),
        (psycopg.OperationalError("connection failed: Connection refused"), DatabaseUnavailable),
        (PoolTimeout("couldn't get a connection after 5.00 sec"), DatabaseBusy),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), DatabaseBusy),
    ],
)
def test_a_lost_connection_is_unavailable_and_a_waited_out_pool_is_busy(error, expected):
    assert type(classify(error)) is expected
    assert type(classify(_as_django_raises(error))) is expected


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
    ],
)
def test_a_transaction_the_server_rolled_back_for_another_is_a_retryable_409(error):
    assert type(classify(error)) is RowLocked
    assert type(classify(_as_django_raises(error))) is RowLocked


def test_errors_the_server_answers_on_a_live_connection_are_not_an_outage():
    assert classify(_as_django_raises(psycopg.errors.UndefinedTable('relation "nope" does not exist'))) is None


@pytest.mark.django_db
def test_the_api_answers_a_lost_connection_with_503_database_unavailable(monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(StaffFactory.create())

    def lost(user):
        raise _as_django_raises(psycopg.errors.AdminShutdown("terminating connection due to administrator command"))

    monkeypatch.setattr("accounts.api._me", lost)
    response = client.get("/api/me")

    assert response.status_code == 503
    assert response.json() == {"code": "database_unavailable", "detail": DatabaseUnavailable.default_detail}
    assert response["Retry-After"] == "5"
