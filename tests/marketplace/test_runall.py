import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT, answers, current_database_url, free_port, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_runall_serves_and_stops_every_process_on_ctrl_c(tmp_path):
    port = free_port()
    log = (tmp_path / "runall.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runall", "--port", str(port)],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": current_database_url(),
            "CELERY_QUEUE": f"runall-{port}",
            "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/health/ready"), timeout=60, what="the server")
        assert len(_children(process.pid)) == 3  # server, worker with beat, Stripe double
        # The worker's pool (2) and embedded beat come up a moment after the server answers.
        wait_until(lambda: len(_descendants(process.pid)) >= 6, timeout=60, what="the worker's pool and beat")
        everything = _descendants(process.pid)

        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)

        assert process.returncode == 0
        assert [pid for pid in everything if _alive(pid)] == []
        assert not answers(f"http://127.0.0.1:{port}/health/live")
    finally:
        leftovers = _descendants(process.pid)
        if process.poll() is None:
            process.kill()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()
