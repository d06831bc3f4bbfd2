"""When the database pool checks a connection before handing it out: only after it has sat idle.

psycopg_pool's `check_connection` costs one round trip to PostgreSQL (an empty statement) each
time a connection leaves the pool, that is once per request: on `GET /api/me` one round trip in
three. It exists for connections that died while idle: after PostgreSQL restarts or fails over,
every idle pooled connection is dead, and unchecked each would fail one request before the pool
noticed. A connection given back a moment ago was working a moment ago, so `IdleCheck` checks
only a connection that has been idle for `idle_seconds` or more. Under load, connections go round
in milliseconds and no request pays the round trip; a quiet process checks each one as before.

What is left uncovered: a connection given back less than `idle_seconds` before the server went
away. Its next request fails at its first statement, which `marketplace.db` answers with a 503
(`database_unavailable`, with Retry-After), and the pool drops it when it comes back broken
(psycopg_pool's `_return_connection`). That window exists with any check: the server can go away
just after one.

This module imports nothing of Django, so that the settings can build the pool's callbacks.
The pool calls them from whichever thread takes or gives back a connection; each reads or
writes one entry of a dict, which is atomic in CPython.
"""

import weakref
from time import monotonic

from psycopg import Connection
from psycopg_pool import ConnectionPool


class IdleCheck:
    """The pool's `check` and `reset` callbacks (psycopg_pool.ConnectionPool's parameters of those names).

    `idle_seconds`: how long a connection may sit in the pool and still be handed out unchecked
    (seconds, monotonic clock). 0 checks every connection, as `check_connection` alone does.
    """

    def __init__(self, idle_seconds: float) -> None:
        if idle_seconds < 0:
            raise ValueError(f"idle_seconds must be 0 or more, not {idle_seconds!r}")
        self.idle_seconds = idle_seconds
        # When each connection was last given back; an entry goes with its connection.
        self._returned_at: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()

    def reset(self, conn: Connection) -> None:
        """Called by the pool as a connection comes back, idle and working (a broken one is dropped first)."""
        self._returned_at[conn] = monotonic()

    def check(self, conn: Connection) -> None:
        """Called by the pool before it hands out `conn`; raises psycopg.OperationalError when it is dead.

        The pool then drops it and tries another (psycopg_pool's `_getconn_with_check_loop`).
        """
        returned_at = self._returned_at.get(conn)
        if returned_at is not None and monotonic() - returned_at < self.idle_seconds:
            return
        ConnectionPool.check_connection(conn)

    def __repr__(self) -> str:
        return f"IdleCheck(idle_seconds={self.idle_seconds!r})"


__all__ = ["IdleCheck"]
