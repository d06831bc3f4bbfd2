"""`make run` on a fresh machine: no DATABASE_URL, no REDIS_URL, so SQLite, the filesystem broker and the
in-memory channel layer. The rest of the suite runs on PostgreSQL and Redis, so this is where a difference
between the two (SQLite's naive datetimes, its locking) shows: the demo story, over HTTP, must complete."""

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT, answers, free_port, running, wait_until

pytestmark = pytest.mark.live

# What `make run` runs with: the embedded defaults, nothing from the test run's own environment.
SERVICES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_QUEUE", "DJANGO_SETTINGS_MODULE")


def test_the_demo_story_completes_on_the_embedded_defaults(tmp_path):
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in SERVICES}
    env |= {"VETTED_VAR_DIR": str(tmp_path / "var"), "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"}

    def manage(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    for step in (("migrate", "--no-input", "-v0"), ("seed_demo",)):
        done = manage(*step, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "var" / "vetted.sqlite3").exists()

    with running(["manage.py", "runall", "--port", str(port)], env=env, log=tmp_path / "runall.log", unset=SERVICES):
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/health/ready"), timeout=90, what="make run's server")
        story = manage("demo", "--base-url", f"http://127.0.0.1:{port}", timeout=400)

    log = (tmp_path / "runall.log").read_text(errors="replace")
    assert story.returncode == 0, story.stdout[-3000:] + story.stderr[-3000:] + log[-3000:]
    assert "The story is complete." in story.stdout
    assert "Traceback" not in log
