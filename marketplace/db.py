"""The database seen from async code: short transactions on a thread, connections given back at once.

Django keeps a thread's connection until the request ends. An async view that
touches the ORM through `sync_to_async` and then awaits the network would hold a
pooled connection for the whole wait, and a slow dependency would drain the pool
for everyone. `atomic_phase` runs one transaction on the request's sync thread
and then closes that thread's connection, which hands it back to the pool
(https://docs.djangoproject.com/en/stable/topics/async/#database-access-in-async-code).

It also turns the database's own guards into answers a client can act on:
PostgreSQL's `lock_timeout` and `statement_timeout`, and the pool's timeout; and a
connection lost to a restarting or unreachable server into a 503, not a 500.
"""

import logging
from collections.abc import Awaitable, Callable

import psycopg.errors
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connections, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from psycopg_pool import PoolTimeout, TooManyRequests

from marketplace.errors import DomainError

logger = logging.getLogger(__name__)


class DatabaseBusy(DomainError):
    """The pool had no connection free, or a statement ran past `statement_timeout`."""

    code = "database_busy"
    status = 503
    default_detail = "The service is busy; nothing was changed. Try again in a moment."
    retry_after = 2


class DatabaseUnavailable(DomainError):
    """The connection to PostgreSQL was lost or refused: the server is restarting, failing over or unreachable."""

    code = "database_unavailable"
    status = 503
    default_detail = "The database is unavailable for a moment. Try again shortly."
    retry_after = 5


class RowLocked(DomainError):
    """Another operation holds the row this request needs, longer than `lock_timeout`."""

    code = "row_locked"
    status = 409
    default_detail = "Another operation on this object is in progress; nothing was changed. Try again in a moment."
    retry_after = 1


def release_connections() -> None:
    """Give this thread's connections back to the pool, unless a transaction is open on them.

    A transaction is open only when the caller wrapped us in one on purpose (a test
    runs inside one); phases themselves never nest.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def atomic_phase[**P, T](function: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """`function` as an awaitable: one transaction on the sync thread, the connection returned when it ends.

    Raises what `function` raises; database guard errors become `RowLocked` or `DatabaseBusy`.
    """

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            with transaction.atomic():
                return function(*args, **kwargs)
        except DatabaseError as exc:
            mapped = classify(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            release_connections()

    return sync_to_async(run, thread_sensitive=True)


def classify(exc: BaseException) -> DomainError | None:
    """The client-facing error for a database guard that fired, or None for any other error.

    - `lock_timeout` (SQLSTATE 55P03) -> RowLocked (409): the row is busy, retry.
    - a deadlock (40P01) or a serialization failure (40001) -> RowLocked (409): PostgreSQL rolled
      this transaction back so another could finish (its docs, "Serialization Failure Handling":
      retry the whole transaction). Lock order keeps the services out of deadlocks; this is the
      answer if one is missed.
    - `statement_timeout` (57014) and the pool's timeout -> DatabaseBusy (503).
    - a connection that broke or could not be made -> DatabaseUnavailable (503).
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, PoolTimeout | TooManyRequests):
            # Before the connection check: the pool's own errors are OperationalErrors without a SQLSTATE too.
            logger.warning("database.pool_exhausted")
            return DatabaseBusy()
        if isinstance(cause, psycopg.errors.LockNotAvailable):
            logger.warning("database.lock_timeout")
            return RowLocked()
        if isinstance(cause, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
            logger.warning("database.rolled_back_for_another", extra={"sqlstate": cause.sqlstate})
            return RowLocked()
        if isinstance(cause, psycopg.errors.QueryCanceled):
            logger.warning("database.statement_timeout")
            return DatabaseBusy()
        if _connection_lost(cause):
            logger.warning("database.unavailable", extra={"error": str(cause).splitlines()[0] if str(cause) else ""})
            return DatabaseUnavailable()
        cause = cause.__cause__ or cause.__context__
    return None


# SQLSTATEs the server sends as it goes away: class 08 (connection exception), and the shutdowns of
# class 57 (57P01 admin_shutdown, as `pg_ctl stop -m fast` ends every session; 57P02 crash_shutdown;
# 57P03 cannot_connect_now, while the server starts or stops).
_SERVER_GONE = ("08", "57P01", "57P02", "57P03")


def _connection_lost(exc: BaseException) -> bool:
    """Whether psycopg says the connection is gone (or never came), rather than that a statement failed.

    An OperationalError without a SQLSTATE is psycopg's own: the server closed the connection,
    the connection is closed, or connecting failed. One with a SQLSTATE came from the server.
    """
    if not isinstance(exc, psycopg.OperationalError):
        return False
    return exc.sqlstate is None or exc.sqlstate.startswith(_SERVER_GONE)


class DatabaseGuardMiddleware(MiddlewareMixin):
    """Pages outside the API (admin, health) answer a fired database guard with 409 or 503, never a 500."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        mapped = classify(exception)
        if mapped is None:
            return None
        response = JsonResponse({"code": mapped.code, "detail": mapped.detail}, status=mapped.status)
        response["Retry-After"] = str(getattr(mapped, "retry_after", 1))
        return response
