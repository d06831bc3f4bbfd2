"""Start the project's real processes for a test and always stop them."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def current_database_url() -> str:
    """The URL of the database this test run uses, for processes the test starts."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def running(
    args: list[str], *, env: dict[str, str], log: Path, unset: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """`python *args` with this process's environment, `env` over it and the `unset` names removed."""
    environment = {name: value for name, value in {**os.environ, **env}.items() if name not in unset}
    with log.open("wb") as out:
        # Its own process group, so whatever it forks (a worker's beat, its pool) is stopped with it.
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def status_of(url: str, **kwargs: Any) -> int:
    """The status a GET of `url` answers (httpx's `kwargs`: headers, ...), or 0 when nothing answers."""
    import httpx

    try:
        return httpx.get(url, **{"timeout": 2, **kwargs}).status_code
    except httpx.HTTPError:
        return 0


def answers(url: str, **kwargs: Any) -> bool:
    """Whether a GET of `url` answers 200: for waiting until a process serves."""
    return status_of(url, **kwargs) == 200


@contextmanager
def celery_worker(
    *, queue: str, log_dir: Path, beat: bool = False, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker on the configured broker, reading only `queue`, on the test database."""
    args = ["-m", "celery", "-A", "marketplace", "worker", "--pool", "solo", "--loglevel", "INFO"]
    args += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue]
    if beat:
        args += ["--beat", "--schedule", str(log_dir / "beat-schedule")]
    log = log_dir / f"worker-{queue}.log"
    with running(
        args, env={"DATABASE_URL": current_database_url(), "CELERY_QUEUE": queue, **(env or {})}, log=log
    ) as process:
        wait_until(lambda: b"ready." in log.read_bytes(), timeout=60, what="the Celery worker to start")
        yield process


@contextmanager
def asgi_server(*, log_dir: Path, env: dict[str, str] | None = None, port: int | None = None) -> Iterator[str]:
    """uvicorn serving the project on `port` (a free one if None), on the test database; yields the base URL.

    Pass a port chosen beforehand when another process must know the URL first (the Stripe double's webhooks).
    """
    port = port or free_port()
    from marketplace.proxies import uvicorn_proxy_args

    args = ["-m", "uvicorn", "marketplace.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    args += uvicorn_proxy_args()
    with running(args, env={"DATABASE_URL": current_database_url(), **(env or {})}, log=log_dir / "server.log"):
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(f"{base}/health/live"), timeout=30, what="the server to start")
        yield base


def needs_redis(why: str) -> Any:
    """Skip unless REDIS_URL is set; `why` says what the test needs Redis for."""
    import pytest

    return pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason=f"needs REDIS_URL: {why}")
