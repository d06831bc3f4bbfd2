"""A matching wave whose worker is SIGKILLed mid-transaction, 20 times: no invitation lost, none twice.

The kill lands inside the wave on purpose, not by timing: the test holds a SHARE lock on
the invitations table, so the worker's `matching_run` takes the request's row lock, reads
and ranks, then blocks on its INSERT. While it waits there, the test kills it:

- in even rounds, only the prefork pool's child: the worker sees `WorkerLostError` and,
  with `task_reject_on_worker_lost`, puts the task back on the queue at once;
- in odd rounds, the whole worker (its process group): nothing acknowledges the task, and
  the broker hands it out again after its visibility timeout (3 s here, set by
  `CELERY_VISIBILITY_TIMEOUT_SECONDS`).

PostgreSQL rolls the killed wave back when its connection drops. At the end every request
has exactly one wave: one invitation and one `invitation.created` notification per
engineer. No sweep runs (no beat), so redelivery alone recovers the work.
"""

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from hiring_requests import tasks
from hiring_requests.models import HiringRequest, Invitation
from marketplace.models import Notification
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import raised
from tests.processes import ROOT, current_database_url, needs_redis, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("the task is published to a real broker, for the worker in another process"),
]

ROUNDS = 20


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _start_worker(queue: str, log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "celery", "-A", "marketplace", "worker", "--pool", "prefork", "--concurrency", "1"]
    args += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO", "-Q", queue]
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "CELERY_QUEUE": queue,
        "CELERY_VISIBILITY_TIMEOUT_SECONDS": "3",
        "MATCH_MAX_PENDING_INVITATIONS": str(ROUNDS),  # the same three engineers are invited to every request
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@contextlib.contextmanager
def _invitations_locked() -> Iterator[psycopg.Connection]:
    """Hold a SHARE lock on the invitations table (reads pass, inserts wait) until the block ends."""
    dsn = current_database_url().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(dsn) as lock:
        lock.execute(f"LOCK TABLE {Invitation._meta.db_table} IN SHARE MODE")
        try:
            yield lock
        finally:
            lock.rollback()


def _a_wave_is_waiting(lock: psycopg.Connection) -> bool:
    lock.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction, the statistics are read once otherwise
    row = lock.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: table locks and pg_stat_activity")
def test_twenty_kills_mid_wave_lose_no_invitation_and_send_none_twice(rubric, tmp_path):
    engineers = [vetted_engineer() for _ in range(3)]
    client = ClientFactory.create()
    # Raised here, the first task goes to the tests' own queue, which no worker reads; the test sends its own.
    requests = [raised(client, hours_per_week=1) for _ in range(ROUNDS)]  # one engineer's hours hold them all
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    worker = _start_worker(queue, log)
    kills = {"pool child": 0, "whole worker": 0}
    try:
        for round_number, request in enumerate(requests):
            with _invitations_locked() as lock:
                tasks.match_request.apply_async((request.pk,), queue=queue)
                wait_until(lambda: _a_wave_is_waiting(lock), timeout=60, what="a wave blocked mid-transaction")
                if round_number % 2 == 0:
                    (child,) = _children(worker.pid)
                    os.kill(child, signal.SIGKILL)
                    kills["pool child"] += 1
                else:
                    _stop(worker)
                    kills["whole worker"] += 1
            if worker.poll() is not None:
                worker = _start_worker(queue, log)
        every_wave_sent = lambda: all(  # noqa: E731
            Invitation.objects.filter(request=r).count() == len(engineers) for r in requests
        )
        wait_until(every_wave_sent, timeout=120, what="every killed wave to be redelivered and sent")
        # Any copy of a task still on its way back would show up within a visibility timeout and a restore scan.
        with contextlib.suppress(AssertionError):
            wait_until(lambda: False, timeout=10, what="late duplicates")
    finally:
        _stop(worker)

    assert kills == {"pool child": ROUNDS // 2, "whole worker": ROUNDS // 2}
    for request in HiringRequest.objects.filter(pk__in=[r.pk for r in requests]):
        invited = sorted(Invitation.objects.filter(request=request).values_list("engineer_id", flat=True))
        assert invited == sorted(e.pk for e in engineers), f"request {request.pk}"
        assert request.waves_sent == 1
        told = Notification.objects.filter(event="invitation.created", payload__request_id=request.pk)
        assert sorted(told.values_list("user_id", flat=True)) == invited
    assert "WorkerLostError" in log.read_text()
