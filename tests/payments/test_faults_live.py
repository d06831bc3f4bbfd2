"""The money path under faults, on live processes: uvicorn and the Stripe double, on PostgreSQL.

Each test names the fault, then asserts what must hold: no 5xx but 503, bystanders
unaffected, nothing lost, nothing done twice. Bounds are generous; the tight
figures are in bench/bench_faults.py.
"""

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
import websockets
from django.db import connection
from django.utils import timezone

from accounts.services import api_token_create
from payments import gateway, services
from payments.models import Milestone
from tests.payments.live import kill_group, party, stripe_double
from tests.processes import asgi_server, current_database_url, free_port, running, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

SLOW = 9.0  # under the 10 s client timeout: nothing retries, and the calls simply take long
BYSTANDER_BOUND = 2.0
IN_FLIGHT = 4  # STRIPE_MAX_CONCURRENCY: the funds the bulkhead lets through to the slow Stripe


def _server_env(double_base: str, **extra: str) -> dict[str, str]:
    return {
        "STRIPE_API_BASE": double_base,
        "DATABASE_POOL_MAX_SIZE": "6",
        "DATABASE_POOL_TIMEOUT": "3",
        **extra,
    }


async def _bystander(base: str, token: str, until: asyncio.Event) -> list[tuple[int, float]]:
    """Read /api/me over and over while the fault lasts: (status, seconds) of each read."""
    seen = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        while not until.is_set():
            started = time.monotonic()
            response = await http.get("/api/me")
            seen.append((response.status_code, time.monotonic() - started))
            await asyncio.sleep(0.1)
    return seen


async def _handshake(base: str, token: str) -> float:
    started = time.monotonic()
    url = base.replace("http", "ws") + "/ws/notifications/"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await asyncio.wait_for(ws.recv(), timeout=10)  # the server's hello
    return time.monotonic() - started


def _idle_in_transaction() -> int:
    with psycopg.connect(current_database_url().replace("postgres://", "postgresql://"), autocommit=True) as direct:
        row = direct.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state LIKE 'idle in transaction%%'",
            [connection.settings_dict["NAME"]],
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_slow_stripe_never_takes_reads_readiness_or_websockets_down(rubric, tmp_path):
    with stripe_double(log_dir=tmp_path) as double:
        first, first_ids = party(milestones=10)
        second, second_ids = party(milestones=10)
        bystander, _ = party()
        double.mode("slow", SLOW)
        with asgi_server(log_dir=tmp_path, env=_server_env(double.base)) as base:

            async def scenario():
                stop = asyncio.Event()
                reads = asyncio.create_task(_bystander(base, bystander.client_token, stop))
                answered: list[int] = []
                refusals_in = asyncio.Event()

                async def fund(http: httpx.AsyncClient, who: Any, pk: int) -> httpx.Response:
                    response = await http.post(
                        f"/api/payments/milestones/{pk}/fund", headers={"Authorization": f"Bearer {who.client_token}"}
                    )
                    answered.append(response.status_code)
                    if len(answered) == 20 - IN_FLIGHT:
                        refusals_in.set()
                    return response

                async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                    funds = [
                        asyncio.create_task(fund(http, who, pk))
                        for who, ids in ((first, first_ids), (second, second_ids))
                        for pk in ids
                    ]
                    # Measure once every fund beyond the bulkhead has been answered, while the rest wait on Stripe.
                    await asyncio.wait_for(refusals_in.wait(), timeout=30)
                    mid_wait = {
                        "idle_in_transaction": await asyncio.to_thread(_idle_in_transaction),
                        "ready": await http.get("/health/ready"),
                        "handshake": await _handshake(base, bystander.client_token),
                    }
                    answers = await asyncio.gather(*funds)
                stop.set()
                return answers, await reads, mid_wait

            answers, reads, mid_wait = asyncio.run(scenario())
        made = {intent["metadata"]["milestone_id"] for intent in double.payment_intents()}

    statuses = sorted({answer.status_code for answer in answers})
    ready = mid_wait["ready"]
    pool = ready.json()["info"]["database_pool"]
    assert set(statuses) <= {200, 503}
    assert 200 in statuses
    assert all(a.headers.get("Retry-After") for a in answers if a.status_code == 503)
    assert {status for status, _ in reads} == {200}
    assert max(seconds for _, seconds in reads) < BYSTANDER_BOUND
    assert ready.status_code == 200
    assert pool["size"] - pool["available"] <= 1  # no connection held by a fund waiting on Stripe
    assert mid_wait["idle_in_transaction"] == 0
    assert mid_wait["handshake"] < BYSTANDER_BOUND
    # Nothing is left half-done: a fund either made its PaymentIntent or was given back.
    assert set(Milestone.objects.values_list("status", flat=True)) <= {"draft", "awaiting_funding"}
    assert made == {str(pk) for pk in Milestone.objects.filter(status="awaiting_funding").values_list("pk", flat=True)}


def test_with_stripe_down_the_breaker_answers_503_at_once_and_reads_carry_on(rubric, tmp_path):
    with stripe_double(log_dir=tmp_path) as double:
        who, ids = party(milestones=8)
        double.mode("down")
        env = _server_env(double.base, STRIPE_BREAKER_FAILURES="3", STRIPE_BREAKER_RESET_SECONDS="60")
        with asgi_server(log_dir=tmp_path, env=env) as base:
            auth = {"Authorization": f"Bearer {who.client_token}"}
            tripping = [
                httpx.post(f"{base}/api/payments/milestones/{pk}/fund", headers=auth, timeout=60) for pk in ids[:3]
            ]
            calls_before = double.api_calls()
            started = time.monotonic()
            refused = httpx.post(f"{base}/api/payments/milestones/{ids[3]}/fund", headers=auth, timeout=60)
            refused_in = time.monotonic() - started
            calls_after = double.api_calls()
            read = httpx.get(f"{base}/api/me", headers=auth, timeout=10)
            ready = httpx.get(f"{base}/health/ready", timeout=10)

    assert [r.status_code for r in tripping] == [503, 503, 503]
    assert refused.status_code == 503
    assert refused.json()["code"] == "payments_unavailable"
    assert int(refused.headers["Retry-After"]) >= 1
    assert calls_after == calls_before  # the breaker answered; Stripe was not asked
    assert refused_in < BYSTANDER_BOUND
    assert Milestone.objects.get(pk=ids[3]).status == "draft"  # never sent, so given back
    assert read.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["info"]["stripe"]["breaker"] == "open"


def test_a_row_lock_held_elsewhere_gets_409_within_lock_timeout_and_other_rows_are_not_delayed(rubric, tmp_path):
    with stripe_double(log_dir=tmp_path) as double:
        who, (locked_id, other_id) = party(milestones=2, status="funded")
        env = _server_env(double.base, DATABASE_LOCK_TIMEOUT_MS="1000")
        with (
            asgi_server(log_dir=tmp_path, env=env) as base,
            psycopg.connect(current_database_url().replace("postgres://", "postgresql://")) as holder,
        ):
            # Another transaction takes the row and keeps it (up to 30 s; released when the test is done).
            holder.execute("SET idle_in_transaction_session_timeout = '30s'")
            holder.execute("SELECT id FROM payments_milestone WHERE id = %s FOR UPDATE", [locked_id])
            engineer_token = api_token_create(user=who.engineer, name="e")[1]
            auth = {"Authorization": f"Bearer {engineer_token}"}
            started = time.monotonic()
            blocked = httpx.post(
                f"{base}/api/payments/milestones/{locked_id}/submit", json={}, headers=auth, timeout=30
            )
            blocked_in = time.monotonic() - started
            started = time.monotonic()
            free = httpx.post(f"{base}/api/payments/milestones/{other_id}/submit", json={}, headers=auth, timeout=30)
            free_in = time.monotonic() - started
            holder.rollback()

    assert blocked.status_code == 409
    assert blocked.json()["code"] == "row_locked"
    assert blocked.headers["Retry-After"] == "1"
    assert blocked_in < 5
    assert free.status_code == 200
    assert free_in < BYSTANDER_BOUND
    assert Milestone.objects.get(pk=locked_id).status == "funded"
    assert Milestone.objects.get(pk=other_id).status == "submitted"


def test_an_exhausted_pool_answers_503_database_busy_within_the_pool_timeout(rubric, tmp_path):
    with stripe_double(log_dir=tmp_path) as double:
        who, (locked_id,) = party(milestones=1, status="funded")
        env = _server_env(
            double.base, DATABASE_POOL_MAX_SIZE="2", DATABASE_POOL_TIMEOUT="1", DATABASE_LOCK_TIMEOUT_MS="8000"
        )
        engineer_token = api_token_create(user=who.engineer, name="e")[1]
        with (
            asgi_server(log_dir=tmp_path, env=env) as base,
            psycopg.connect(current_database_url().replace("postgres://", "postgresql://")) as holder,
        ):
            holder.execute("SELECT id FROM payments_milestone WHERE id = %s FOR UPDATE", [locked_id])

            async def exhaust():
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    # Two requests wait on the lock, each holding one of the pool's two connections.
                    waiting = [
                        asyncio.create_task(
                            http.post(
                                f"/api/payments/milestones/{locked_id}/submit",
                                json={},
                                headers={"Authorization": f"Bearer {engineer_token}"},
                            )
                        )
                        for _ in range(2)
                    ]
                    await asyncio.to_thread(
                        wait_until, lambda: _waiting_on_locks() >= 2, timeout=15, what="two requests on the lock"
                    )
                    started = time.monotonic()
                    read, ready = await asyncio.gather(
                        http.get("/api/me", headers={"Authorization": f"Bearer {who.client_token}"}),
                        http.get("/health/ready"),
                    )
                    read_in = time.monotonic() - started
                    holder.rollback()
                    return read, read_in, ready, await asyncio.gather(*waiting)

            read, read_in, ready, waited = asyncio.run(exhaust())

    assert read.status_code == 503
    assert read.json()["code"] == "database_busy"
    assert int(read.headers["Retry-After"]) >= 1
    assert read_in < 4  # the pool timeout (1 s), not a hang
    # The database itself answers (readiness asks it over its own connection): a busy pool is not "down".
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["info"]["database_pool"]["available"] == 0
    # Once the lock is gone, one submit wins and the other finds the work already submitted.
    assert sorted(r.status_code for r in waited) == [200, 409]
    assert Milestone.objects.get(pk=locked_id).status == "submitted"


def test_a_client_that_hangs_up_mid_fund_leaves_the_step_recorded_without_the_sweep(rubric, tmp_path):
    with stripe_double(log_dir=tmp_path) as double:
        who, (pk,) = party(milestones=1)
        double.mode("slow", 3)
        with asgi_server(log_dir=tmp_path, env=_server_env(double.base)) as base:
            with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
                httpx.post(
                    f"{base}/api/payments/milestones/{pk}/fund",
                    headers={"Authorization": f"Bearer {who.client_token}", "Idempotency-Key": "hang-up"},
                    timeout=1,
                )
            wait_until(lambda: _status(pk) == "awaiting_funding", timeout=15, what="the shielded step to record")
            log = (tmp_path / "server.log").read_text()

    assert "CurrentThreadExecutor" not in log
    assert "Task exception was never retrieved" not in log
    assert Milestone.objects.get(pk=pk).payment_intent_id.startswith("pi_")


def test_a_money_request_answers_within_its_deadline_even_across_several_stripe_calls(rubric, tmp_path):
    with stripe_double(log_dir=tmp_path) as double:
        who, (pk,) = party(milestones=1)
        double.mode("slow", 4)
        env = _server_env(double.base, STRIPE_DEADLINE_SECONDS="2", STRIPE_TIMEOUT_SECONDS="10")
        with asgi_server(log_dir=tmp_path, env=env) as base:
            started = time.monotonic()
            answer = httpx.post(
                f"{base}/api/payments/milestones/{pk}/fund",
                headers={"Authorization": f"Bearer {who.client_token}"},
                timeout=30,
            )
            answered_in = time.monotonic() - started

    assert answer.status_code == 503
    assert answer.json()["code"] == "payments_unavailable"
    assert answered_in < 4  # the 2 s deadline, not the 4 s Stripe took


def test_a_server_killed_between_claim_and_record_is_finished_once_by_the_sweep(rubric, tmp_path, settings):
    with stripe_double(log_dir=tmp_path) as double:
        who, (pk,) = party(milestones=1)
        double.mode("slow", 2)
        port = free_port()
        args = ["-m", "uvicorn", "marketplace.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
        env = {"DATABASE_URL": current_database_url(), **_server_env(double.base)}
        with running(args, env=env, log=tmp_path / "server.log") as server:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: _answers(f"{base}/health/live"), timeout=30, what="the server")

            async def fund_then_kill():
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    fund = asyncio.create_task(
                        http.post(
                            f"/api/payments/milestones/{pk}/fund",
                            headers={"Authorization": f"Bearer {who.client_token}"},
                        )
                    )
                    # The claim committed; Stripe is working on it: the server dies now.
                    await asyncio.to_thread(wait_until, lambda: _status(pk) == "funding", timeout=10, what="the claim")
                    await asyncio.to_thread(kill_group, server.pid)
                    with pytest.raises(httpx.HTTPError):
                        await fund

            asyncio.run(fund_then_kill())
        left = _status(pk)
        double.mode("normal")
        settings.STRIPE_API_BASE = double.base
        gateway.reset()
        later = timezone.now() + timedelta(seconds=settings.PAYMENT_STEP_STALE_SECONDS + 1)
        first = services.steps_resume(now=later)
        again = services.steps_resume(now=later)
        intents = [i for i in double.payment_intents() if i["metadata"]["milestone_id"] == str(pk)]

    assert left == "funding"  # recorded and recoverable, not lost
    assert first == {"resumed": 1, "failed": 0}
    assert again == {"resumed": 0, "failed": 0}
    assert Milestone.objects.get(pk=pk).status == "awaiting_funding"
    assert len(intents) == 1  # the replay reused the idempotency key: one PaymentIntent
    assert Milestone.objects.get(pk=pk).payment_intent_id == intents[0]["id"]


def _waiting_on_locks() -> int:
    with psycopg.connect(current_database_url().replace("postgres://", "postgresql://"), autocommit=True) as direct:
        row = direct.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [connection.settings_dict["NAME"]],
        ).fetchone()
    return int(row[0]) if row else 0


def _status(pk: int) -> str:
    return str(Milestone.objects.values_list("status", flat=True).get(pk=pk))


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
