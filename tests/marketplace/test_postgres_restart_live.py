"""PostgreSQL restarted under load: requests in between get a bounded 503, and the same process recovers on its own.

The test runs a PostgreSQL cluster of its own (initdb as the `postgres` user, on a free port), never
the shared server other tests and people use, so it may stop and start it at will. While several
threads read the API, readiness and liveness, the cluster stops (`pg_ctl stop -m fast`, which ends
every session as a failover or a restart does), stays down for a few seconds and starts again.
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from marketplace.proxies import uvicorn_proxy_args
from tests.processes import ROOT, free_port, running, status_of, wait_until

pytestmark = pytest.mark.live

# Long enough for psycopg_pool's reconnection backoff (1, 2, 4, 8, 16 s...) to outgrow the outage: with
# its default reconnect_timeout (300 s) the pool's next attempt came about 13 s after PostgreSQL was back.
DOWN_SECONDS = 18
# Every answer, however the outage meets it, within this: the pool's timeout (DATABASE_POOL_TIMEOUT,
# 5 s) is the longest a request waits for a connection, and then it is refused.
ANSWER_BOUND_SECONDS = 10
# From PostgreSQL accepting connections again to the API answering 200, in the same process.
RECOVERY_BOUND_SECONDS = 6
API_PATHS = ("/api/me", "/api/auth/tokens")
OUTAGE_CODES = {"database_busy", "database_unavailable"}

SEED = """
from accounts.services import api_token_create
from tests.factories import ClientFactory

print("TOKEN=" + api_token_create(user=ClientFactory.create(), name="restart")[1])
"""


def _postgres_bin() -> Path | None:
    """The newest server binaries Debian's packages installed (/usr/lib/postgresql/<version>/bin)."""
    found = [path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").exists()]
    found.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    return found[-1] if found else None


def _missing() -> str | None:
    """What this machine lacks to run a PostgreSQL cluster of our own, or None."""
    if _postgres_bin() is None:
        return "PostgreSQL's server binaries (/usr/lib/postgresql/<version>/bin/initdb: apt-get install postgresql)"
    if shutil.which("runuser") is None:
        return "runuser (util-linux), to run initdb and pg_ctl as the postgres user"
    if os.geteuid() != 0:
        return "root, to run PostgreSQL as the postgres user through runuser"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "a `postgres` system user (the postgresql package creates it)"
    return None


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster: data in `home/data`, its socket and log in `home`."""

    bin: Path
    home: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/vetted"

    def run(self, program: str, *args: str, check: bool = True) -> None:
        """`program` of this PostgreSQL version, run as the postgres user."""
        runuser = shutil.which("runuser") or "runuser"
        subprocess.run(
            [runuser, "-u", "postgres", "--", str(self.bin / program), *args],
            check=check,
            capture_output=True,
            timeout=120,
        )

    def pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1"
        self.run("pg_ctl", "-D", str(self.home / "data"), "-l", str(self.home / "postgres.log"), "-o", options, *args)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    missing = _missing()
    if missing:
        pytest.skip(f"needs {missing}")
    postgres_bin = _postgres_bin()
    assert postgres_bin is not None
    # Not pytest's tmp_path: its parents are root's alone, and the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="vetted-pg-"))
    postgres = pwd.getpwnam("postgres")
    os.chown(home, postgres.pw_uid, postgres.pw_gid)
    cluster = Cluster(bin=postgres_bin, home=home, port=free_port())
    try:
        cluster.run("initdb", "-D", str(home / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        cluster.pg_ctl("-w", "start")
        import psycopg

        with psycopg.connect(cluster.url.removesuffix("/vetted") + "/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE vetted")
        yield cluster
    finally:
        # Whatever happened, the cluster stops: an immediate stop needs no session to end first.
        cluster.run("pg_ctl", "-D", str(home / "data"), "stop", "-m", "immediate", check=False)
        shutil.rmtree(home, ignore_errors=True)


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@dataclass
class Answer:
    path: str
    started: float  # time.monotonic()
    ended: float
    status: int  # 0: no HTTP answer at all (a dropped connection, or no answer within the client's 30 s)
    code: str | None = None
    retry_after: str | None = None
    failed: tuple[str, ...] = ()
    error: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def _load(base: str, path: str, headers: dict[str, str], stop: threading.Event, answers: list[Answer]) -> None:
    """GET `path` over and over until told to stop, recording every answer."""
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = client.get(path)
            except httpx.HTTPError as exc:
                answers.append(Answer(path, started, time.monotonic(), 0, error=repr(exc)))
            else:
                is_json = response.headers.get("content-type", "").startswith("application/json")
                body = response.json() if is_json else {}
                answers.append(
                    Answer(
                        path,
                        started,
                        time.monotonic(),
                        response.status_code,
                        code=body.get("code"),
                        retry_after=response.headers.get("Retry-After"),
                        failed=tuple(body.get("failed", ())),
                    )
                )
            time.sleep(0.05)


def _summary(answers: list[Answer]) -> str:
    counts = Counter((a.path, a.status, a.code) for a in answers)
    return ", ".join(f"{path} {status} {code or ''}: {n}" for (path, status, code), n in sorted(counts.items()))


def test_postgres_restarting_under_load_answers_503_within_bounds_and_the_same_process_recovers(
    cluster: Cluster, tmp_path: Path
):
    env = {"DATABASE_URL": cluster.url}
    _manage(env, "migrate", "--no-input", "-v0")
    token = _manage(env, "shell", "-c", SEED).split("TOKEN=")[1].strip()
    auth = {"Authorization": f"Bearer {token}"}

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    uvicorn = ["-m", "uvicorn", "marketplace.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "server.log"
    answers: list[Answer] = []
    with running([*uvicorn, *uvicorn_proxy_args()], env=env, log=log) as server:
        wait_until(lambda: status_of(f"{base}/api/me", headers=auth) == 200, timeout=30, what="the server")
        stop = threading.Event()
        loads = [(path, auth) for path in API_PATHS for _ in range(3)]
        loads += [("/health/ready", {}), ("/health/live", {})]
        threads = [threading.Thread(target=_load, args=(base, *load, stop, answers)) for load in loads]
        for thread in threads:
            thread.start()
        try:
            time.sleep(2)
            stopping = time.monotonic()
            cluster.pg_ctl("-m", "fast", "-w", "stop")
            down = time.monotonic()
            time.sleep(DOWN_SECONDS)
            cluster.pg_ctl("-w", "start")
            up = time.monotonic()

            def api_recovered() -> bool:
                recent = [a for a in answers if a.path in API_PATHS and a.started > time.monotonic() - 1]
                return len(recent) >= 5 and all(a.status == 200 for a in recent)

            # Waits past the bound, so a slow recovery fails below with its figures.
            wait_until(api_recovered, timeout=30, what="the API to answer 200 again")
            time.sleep(2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=40)
        still_running = server.poll() is None
    server_log = log.read_text()

    api = [a for a in answers if a.path in API_PATHS]
    ready = [a for a in answers if a.path == "/health/ready"]
    live = [a for a in answers if a.path == "/health/live"]
    before = [a for a in answers if a.ended < stopping]
    back = min((a.ended for a in api if a.started >= up and a.status == 200), default=float("inf"))
    report = (
        f"{_summary(answers)}; slowest {max(a.seconds for a in answers):.2f}s; "
        f"API back {back - up:.2f}s after PostgreSQL"
    )

    # Before the stop everything answered, so what follows is the restart's doing.
    assert before, report
    assert {a.status for a in before} == {200}, report
    # No request hung: each was answered, within the bound, and none was dropped.
    assert not [a for a in answers if a.status == 0], [a.error for a in answers if a.status == 0]
    assert max(a.seconds for a in answers) < ANSWER_BOUND_SECONDS, report
    # The API refused with its own error body while the database was away: 503, never a 500.
    refused = [a for a in api if a.status != 200]
    assert refused, f"no request met the outage: {report}"
    assert {a.status for a in refused} == {503}, report
    assert {a.code for a in refused} <= OUTAGE_CODES, report
    assert all(a.retry_after for a in refused), report
    # Readiness said so, naming the database, and came back.
    assert {a.status for a in ready} <= {200, 503}, report
    while_down = [a for a in ready if a.started >= down and a.ended <= up]
    assert while_down, report
    assert all(a.status == 503 and "database" in a.failed for a in while_down), report
    assert ready[-1].status == 200, report
    # Liveness is not the database's business: 200 throughout, promptly.
    assert {a.status for a in live} == {200}, report
    assert max(a.seconds for a in live) < 2, report
    # The same process recovered on its own, soon after PostgreSQL did.
    assert still_running, "the server process died"
    assert server_log.count("Started server process") == 1
    assert back - up < RECOVERY_BOUND_SECONDS, report
    assert "api.unhandled_error" not in server_log
    assert "Internal Server Error" not in server_log
