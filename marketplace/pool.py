"""When the database pool checks a connection before lending it: only when it has not been lent lately.

psycopg_pool's `check_connection` costs one round trip to PostgreSQL (an empty statement) each
time a connection leaves the pool, that is once per request: on `GET /api/me` it was one round
trip in three. It exists for connections that died while idle: after PostgreSQL restarts or fails
over, every idle pooled connection is dead, and unchecked each would fail one request before the
pool noticed. `IdleCheck` checks a connection only when it was last lent `idle_seconds` ago or
more. Under load, connections go round in milliseconds and no request pays the round trip; a
quiet process checks each one as before, and so does a request after a long one.

What is left uncovered: a connection lent less than `idle_seconds` before the server went away.
Its next request fails at its first statement, which `marketplace.db` answers with a 503
(`database_unavailable`, with Retry-After), and the pool drops it when it comes back broken
(psycopg_pool's `_return_connection`). That window exists with any check: the server can go away
just after one.

Why the time a connection was lent, not the time it was given back: psycopg_pool hands every
return to its worker thread as soon as the pool has a `reset` callback (`ConnectionPool._putconn`),
which would cost each request a thread handoff, and Django's own comment on `_close` notes that
its error wrapping then no longer covers the return. Only the `check` callback is used.

This module imports nothing of Django, so that the settings can build the pool's callback. The
pool calls it from whichever thread takes a connection; it reads and writes one entry of a
dict, which is atomic in CPython.
"""

import weakref
from time import monotonic

from psycopg import Connection
from psycopg_pool import ConnectionPool


class IdleCheck:
    """The pool's `check` callback (psycopg_pool.ConnectionPool's parameter of that name), as `.check`.

    `idle_seconds`: how soon after it was last lent a connection may be lent again unchecked
    (seconds, monotonic clock). 0 checks every connection, as `check_connection` alone does.
    """

    def __init__(self, idle_seconds: float) -> None:
        if idle_seconds < 0:
            raise ValueError(f"idle_seconds must be 0 or more, not {idle_seconds!r}")
        self.idle_seconds = idle_seconds
        # When each connection was last lent; an entry goes with its connection.
        self._lent_at: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()

    def check(self, conn: Connection) -> None:
        """Called by the pool before it lends `conn`; raises psycopg.OperationalError when it is dead.

        The pool then drops it and tries another (psycopg_pool's `_getconn_with_check_loop`).
        """
        now = monotonic()
        lent_at = self._lent_at.get(conn)
        if lent_at is None or now - lent_at >= self.idle_seconds:
            ConnectionPool.check_connection(conn)
        self._lent_at[conn] = now

    def __repr__(self) -> str:
        return f"IdleCheck(idle_seconds={self.idle_seconds!r})"


__all__ = ["IdleCheck"]
