"""Run the whole service in one terminal: the ASGI server, a Celery worker and beat.

Ctrl-C (or SIGTERM) stops all of them: each gets SIGTERM and a grace period to
finish what it is doing, then SIGKILL. If one of them dies on its own, the
others are stopped too, so a half-running service never goes unnoticed.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

# Beyond each child's own shutdown budget, before it is killed.
MARGIN_SECONDS = 10


def grace_seconds(name: str) -> float:
    """How long `name` may take to stop on SIGTERM: the web server drains and finishes its requests
    (SHUTDOWN_DRAIN_SECONDS + SHUTDOWN_GRACE_SECONDS); the worker finishes its running tasks, which
    never outlive CELERY_TASK_TIME_LIMIT (its soft shutdown lasts that long)."""
    if name == "web":
        return settings.SHUTDOWN_DRAIN_SECONDS + settings.SHUTDOWN_GRACE_SECONDS + MARGIN_SECONDS
    if name == "worker":
        return float(settings.CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT) + MARGIN_SECONDS
    return MARGIN_SECONDS


def _signal_group(child: "subprocess.Popen[bytes]", signum: int) -> None:
    # ProcessLookupError: the whole group is gone already.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)


class Command(BaseCommand):
    help = "Start the ASGI server, a Celery worker and beat; stop them all on Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "serve", "--host", host, "--port", str(port)],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "marketplace",
                "worker",
                "--beat",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }
        if settings.STRIPE_SECRET_KEY == "sk_test_double":  # noqa: S105 - the double's placeholder key
            # No real Stripe keys: serve the double, and have it send webhooks to this server.
            port_of_double = settings.STRIPE_API_BASE.rsplit(":", 1)[-1].strip("/")
            webhook = f"http://{host}:{port}/api/payments/stripe/webhook"
            commands["stripe"] = [
                python,
                "manage.py",
                "stripe_double",
                "--port",
                port_of_double,
                "--webhook-url",
                webhook,
            ]
        # Each child leads its own process group, so stopping it stops what it forked too
        # (the worker's pool processes and its embedded beat).
        # Two malloc arenas per process, as deployed (docs/operations.md, "Memory"), unless set otherwise.
        env = {"MALLOC_ARENA_MAX": "2", **os.environ}
        children = {name: subprocess.Popen(cmd, start_new_session=True, env=env) for name, cmd in commands.items()}
        self.stdout.write(f"Vetted on http://{host}:{port}/  (API docs: /api/docs, admin: /admin/). Ctrl-C stops.")
        if settings.MAIL_BACKEND == "file":
            self.stdout.write(f"Emails are written to {settings.MAIL_FILE_DIR}/ (one file per email).")

        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with {child.returncode}; stopping the rest.")
                    exit_code = 1
                    stopping = True
                    break
            time.sleep(0.5)
        self._stop(children)
        sys.exit(exit_code)

    def _stop(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        for child in children.values():
            # The leader only: Celery's main process shuts its pool down itself (a warm shutdown).
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        started = time.monotonic()
        for name, child in children.items():
            grace = grace_seconds(name)
            try:
                child.wait(timeout=max(0.0, started + grace - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop within {grace:.0f}s; killing it.")
                _signal_group(child, signal.SIGKILL)
                child.wait()
            # Whatever the child left behind in its group goes too.
            _signal_group(child, signal.SIGKILL)
        self.stdout.write("Stopped.")
