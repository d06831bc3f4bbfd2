"""SIGTERM on a live web process: readiness drains first, requests keep being served, websockets get 1012."""

import asyncio
import os
import signal
import subprocess
import threading
import time
from typing import Any

import psycopg
import pytest
import websockets

from accounts import services as accounts_services
from tests.factories import EngineerFactory
from tests.processes import current_database_url, free_port, running, status_of, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_sigterm_drains_then_closes_websockets_with_1012_then_stops(tmp_path):
    user = EngineerFactory.create()
    _, token = accounts_services.api_token_create(user=user, name="drain")
    port = free_port()
    base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    env = {"DATABASE_URL": current_database_url(), "SHUTDOWN_DRAIN_SECONDS": "3", "SHUTDOWN_GRACE_SECONDS": "5"}
    auth = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "server.log"
    with running(["manage.py", "serve", "--port", str(port)], env=env, log=log) as server:
        wait_until(lambda: status_of(f"{base}/health/ready") == 200, timeout=60, what="the server")

        async def scenario() -> tuple[int | None, list[int], list[int], float]:
            async with websockets.connect(f"{ws}/ws/notifications/", additional_headers=auth) as socket:
                await socket.recv()  # hello: the socket is open and registered
                os.kill(server.pid, signal.SIGTERM)
                signalled = time.monotonic()
                ready, served = [], []
                closed_after = None
                while closed_after is None and time.monotonic() - signalled < 20:
                    ready.append(await asyncio.to_thread(status_of, f"{base}/health/ready"))
                    served.append(await asyncio.to_thread(status_of, f"{base}/api/me", headers=auth))
                    try:
                        await asyncio.wait_for(socket.recv(), timeout=0.2)
                    except TimeoutError:
                        continue
                    except websockets.ConnectionClosed:
                        closed_after = time.monotonic() - signalled
                code = socket.close_code
                return code, ready, served, closed_after or -1.0

        code, ready, served, closed_after = asyncio.run(scenario())
        exit_code = server.wait(timeout=30)

    # Out of rotation at once, while the API is still served. The last round of calls may race the
    # stop itself (the socket closes as uvicorn stops listening): those find no server (0).
    while ready and ready[-1] == 0:
        ready.pop()
    while served and served[-1] == 0:
        served.pop()
    assert len(ready) >= 3, "too few readiness reads during the drain"
    assert set(ready) == {503}, ready
    assert set(served) == {200}, served
    # The socket is told to go elsewhere after the drain, not before.
    assert code == 1012
    assert 2.0 <= closed_after < 15, closed_after
    # Then the process stops on its own, and its lifespan shutdown ran.
    assert exit_code in (0, -signal.SIGTERM)
    text = log.read_text()
    assert "server.draining" in text
    assert "server.stopped" in text


def test_a_second_sigterm_stops_at_once(tmp_path):
    port = free_port()
    env = {"DATABASE_URL": current_database_url(), "SHUTDOWN_DRAIN_SECONDS": "60"}
    with running(["manage.py", "serve", "--port", str(port)], env=env, log=tmp_path / "server.log") as server:
        wait_until(lambda: status_of(f"http://127.0.0.1:{port}/health/ready") == 200, timeout=60, what="the server")
        server.send_signal(signal.SIGTERM)
        wait_until(lambda: status_of(f"http://127.0.0.1:{port}/health/ready") == 503, timeout=10, what="draining")
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)  # not the 60 s drain
        except subprocess.TimeoutExpired:
            pytest.fail("a second SIGTERM did not cut the drain short")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_signal_stops_at_once_with_a_request_stuck_in_the_database(tmp_path, signum):
    # No lock or statement timeout: the request would wait a minute for the table the test holds.
    port = free_port()
    env = {
        "DATABASE_URL": current_database_url(),
        "SHUTDOWN_DRAIN_SECONDS": "60",
        "SHUTDOWN_GRACE_SECONDS": "60",
        "DATABASE_LOCK_TIMEOUT_MS": "0",
        "DATABASE_STATEMENT_TIMEOUT_MS": "0",
    }
    holder = psycopg.connect(current_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    try:
        with running(["manage.py", "serve", "--port", str(port)], env=env, log=tmp_path / "server.log") as server:
            wait_until(lambda: status_of(f"http://127.0.0.1:{port}/health/ready") == 200, timeout=60, what="the server")
            holder.execute("LOCK TABLE accounts_apitoken IN ACCESS EXCLUSIVE MODE")
            stuck = threading.Thread(
                target=status_of,
                args=(f"http://127.0.0.1:{port}/api/me",),
                kwargs={"headers": {"Authorization": "Bearer vt_waiting"}},
                daemon=True,
            )
            stuck.start()
            wait_until(lambda: _waits_for_a_lock(holder), timeout=20, what="the request to wait for the table")
            server.send_signal(signum)
            wait_until(lambda: status_of(f"http://127.0.0.1:{port}/health/ready") == 503, timeout=10, what="draining")
            server.send_signal(signum)
            try:
                server.wait(timeout=20)  # not the 60 s drain, nor the request's wait
            except subprocess.TimeoutExpired:
                pytest.fail(f"a second {signum.name} did not stop a server with a request stuck in the database")
        assert server.returncode == 128 + signum
        assert "server.stopped_at_once" in (tmp_path / "server.log").read_text()
    finally:
        holder.rollback()
        holder.close()


def _waits_for_a_lock(holder: "psycopg.Connection[Any]") -> bool:
    with holder.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])
