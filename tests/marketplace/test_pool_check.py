"""The pool checks a connection only when it was not lent lately (marketplace.pool), on real PostgreSQL connections.

A connection whose server session ended (pg_terminate_backend, as a restart ends every session) is
the fault: checked, it is found dead and replaced; lent a moment ago, it goes out unchecked.
"""

from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg_pool import ConnectionPool

from marketplace.pool import IdleCheck

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="needs PostgreSQL: the check is psycopg_pool's, and SQLite has no server session to lose",
)


def _conninfo() -> str:
    """The maintenance database of the test server: these tests touch no table."""
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        host=params.get("host") or "127.0.0.1",
        port=params.get("port") or 5432,
        user=params.get("user") or "postgres",
        dbname="postgres",
    )


def _end_session(conn: psycopg.Connection) -> None:
    """End `conn`'s server session from another connection, as a PostgreSQL restart would."""
    pid = conn.info.backend_pid
    with psycopg.connect(_conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


class Clock:
    """marketplace.pool's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr("marketplace.pool.monotonic", moved)
    return moved


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    with psycopg.connect(_conninfo(), autocommit=True) as opened:
        yield opened


def test_a_connection_never_lent_is_checked(conn):
    check = IdleCheck(idle_seconds=60)
    check.check(conn)  # alive: no error
    other = IdleCheck(idle_seconds=60)
    _end_session(conn)
    # New to this check: it asks the server, whatever another check saw.
    with pytest.raises(psycopg.OperationalError):
        other.check(conn)


def test_a_connection_lent_a_moment_ago_goes_out_unchecked(conn, clock):
    check = IdleCheck(idle_seconds=60)
    check.check(conn)
    _end_session(conn)
    clock.advance(59.9)
    # Dead, but lent less than a minute ago: no round trip, so no error here.
    check.check(conn)
    assert not conn.closed


@pytest.mark.parametrize(("idle_seconds", "later"), [(5.0, 5.0), (5.0, 60.0), (0.0, 0.0)], ids=["at", "past", "zero"])
def test_a_connection_not_lent_within_the_bound_is_checked(conn, clock, idle_seconds, later):
    check = IdleCheck(idle_seconds=idle_seconds)
    check.check(conn)
    _end_session(conn)
    clock.advance(later)
    with pytest.raises(psycopg.OperationalError):
        check.check(conn)


def test_a_negative_bound_is_refused():
    with pytest.raises(ValueError, match="idle_seconds"):
        IdleCheck(idle_seconds=-1)


def test_the_pool_lends_a_busy_connection_unchecked_and_replaces_one_that_died_while_idle(monkeypatch, clock):
    checked: list[int] = []
    real_check = ConnectionPool.check_connection

    def counted(conn: psycopg.Connection) -> None:
        checked.append(conn.info.backend_pid)
        real_check(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    check = IdleCheck(idle_seconds=0.2)
    with ConnectionPool(_conninfo(), min_size=1, max_size=1, check=check.check) as pool:
        pool.wait(timeout=10)
        with pool.connection(timeout=5) as first:
            first_pid = first.info.backend_pid
        assert checked == [first_pid]  # new to the check: asked once
        # Lent again at once, three times: the same connection, and no round trip for any of them.
        for _ in range(3):
            with pool.connection(timeout=5) as again:
                assert again.info.backend_pid == first_pid
        assert checked == [first_pid]
        # Its session ends while it sits in the pool, past the bound: checked, found dead, replaced.
        _end_session(again)
        clock.advance(0.3)
        with pool.connection(timeout=10) as replaced:
            assert replaced.info.backend_pid != first_pid
            assert replaced.execute("SELECT 1").fetchone() == (1,)
        assert checked[:2] == [first_pid, first_pid]
        assert pool.get_stats().get("connections_lost", 0) >= 1


def test_the_settings_give_the_pool_the_idle_check():
    pool_options = settings.DATABASES["default"]["OPTIONS"]["pool"]
    owner = pool_options["check"].__self__
    assert isinstance(owner, IdleCheck)
    assert owner.idle_seconds == settings.DATABASE_POOL_CHECK_IDLE_SECONDS
    # A reset callback would send every return through the pool's worker thread (marketplace.pool).
    assert "reset" not in pool_options
