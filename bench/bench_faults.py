"""A bystander's reads while Stripe is normal, slow, or down: the money path must not take reads with it.

One uvicorn process (default pool of 10 connections) and the Stripe double, on
PostgreSQL. In each condition 20 milestones are funded at once while 8 readers
call `GET /api/me` in a loop for WINDOW seconds; the figures are the readers'
throughput and latency. Conditions:
- normal: Stripe answers at once;
- slow: every Stripe call takes 9 s (under the 10 s timeout: no retries, breaker closed at first);
- down: Stripe answers 503 to everything.

Target: with Stripe slow or down, read throughput is at least 0.8 of normal and p99 at most 2x normal.

Run with `make bench`, or:
  BENCH_FAULTS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vetted_bench_faults \
  .venv/bin/python bench/bench_faults.py
"""

import asyncio
import contextlib
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.harness import free_port, percentile, process

DATABASE_URL = os.environ.get("BENCH_FAULTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vetted_bench_faults")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.pop("REDIS_URL", None)  # the in-memory defaults: this measures the database and Stripe, nothing else
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

FUNDS = 20
READERS = 8
WINDOW = 10.0
SLOW_SECONDS = 9.0


def prepare() -> tuple[str, str, list[list[int]]]:
    """The bench's own database, migrated; a bystander's token; a client's token and 20 draft milestones per run."""
    import django
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import Role, User
    from accounts.services import api_token_create
    from hiring_requests.models import Engagement, HiringRequest
    from payments.models import Milestone

    stamp = str(time.time_ns())
    bystander = User.objects.create_user(f"bystander-{stamp}@bench.test", "x" * 20, role=Role.CLIENT)
    client = User.objects.create_user(f"client-{stamp}@bench.test", "x" * 20, role=Role.CLIENT)
    engineer = User.objects.create_user(f"engineer-{stamp}@bench.test", "x" * 20, role=Role.ENGINEER)
    runs = []
    for condition in range(3):
        request = HiringRequest.objects.create(
            client=client,
            status="hired",
            title=f"bench {condition}",
            description="faults bench",
            required_skills=["python"],
            nice_to_have_skills=[],
            min_level="mid",
            budget_kind="fixed",
            budget_minor=100_000,
            currency="usd",
            hours_per_week=20,
            time_zone="UTC",
            min_overlap_hours=0,
            start_date=date(2099, 1, 1),
        )
        engagement = Engagement.objects.create(
            request=request,
            client=client,
            engineer=engineer,
            rate_kind="fixed",
            rate_minor=100_000,
            currency="usd",
            hours_per_week=20,
        )
        parts = [
            Milestone(
                engagement=engagement, title=f"part {n}", amount_minor=20_000, currency="usd", due_date=date(2099, 1, 1)
            )
            for n in range(FUNDS)
        ]
        runs.append([made.pk for made in Milestone.objects.bulk_create(parts)])
    return api_token_create(user=bystander, name="bench")[1], api_token_create(user=client, name="bench")[1], runs


def wait_for(url: str, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 30 s")


async def condition(base: str, reader_token: str, client_token: str, milestones: list[int]) -> dict[str, object]:
    async def read_loop(http: httpx.AsyncClient, until: float, latencies: list[float], errors: list[int]) -> None:
        while time.monotonic() < until:
            started = time.monotonic()
            response = await http.get("/api/me")
            latencies.append(time.monotonic() - started)
            if response.status_code != 200:
                errors.append(response.status_code)

    async with (
        httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {client_token}"}) as funder,
        httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {reader_token}"}) as reader,
    ):
        funds = [asyncio.create_task(funder.post(f"/api/payments/milestones/{pk}/fund")) for pk in milestones]
        await asyncio.sleep(0.5)  # the funds are in flight before reading starts
        latencies: list[float] = []
        errors: list[int] = []
        until = time.monotonic() + WINDOW
        await asyncio.gather(*(read_loop(reader, until, latencies, errors) for _ in range(READERS)))
        answers = await asyncio.gather(*funds)
    return {
        "reads_per_second": len(latencies) / WINDOW,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "read_errors": len(errors),
        "fund_statuses": sorted({a.status_code for a in answers}),
    }


def main() -> None:
    reader_token, client_token, runs = prepare()
    logs = ROOT / "var" / "bench-faults"
    logs.mkdir(parents=True, exist_ok=True)
    double_port, server_port = free_port(), free_port()
    double, base = f"http://127.0.0.1:{double_port}", f"http://127.0.0.1:{server_port}"
    server_env = {"STRIPE_API_BASE": double, "LOG_LEVEL": "ERROR"}
    with (
        process(["manage.py", "stripe_double", "--port", str(double_port)], env={}, log=logs / "double.log"),
        process(
            ["-m", "uvicorn", "marketplace.asgi:application", "--port", str(server_port), "--log-level", "warning"],
            env=server_env,
            log=logs / "server.log",
        ),
    ):
        wait_for(f"{double}/v1/events", {"Authorization": "Bearer sk_test_double"})
        wait_for(f"{base}/health/live")
        results = {}
        for name, mode, ids in (("normal", "normal", runs[0]), ("slow", "slow", runs[1]), ("down", "down", runs[2])):
            httpx.post(f"{double}/_test/mode", data={"mode": mode, "delay_seconds": str(SLOW_SECONDS)}, timeout=5)
            results[name] = asyncio.run(condition(base, reader_token, client_token, ids))
            ready = httpx.get(f"{base}/health/ready", timeout=10)
            results[name]["ready"] = ready.status_code
    normal = results["normal"]
    print(f"{FUNDS} funds in flight, {READERS} readers for {WINDOW:.0f} s each, one server process, pool of 10")
    print(f"{'stripe':<8} {'reads/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ready':>6}  fund answers")
    for name, row in results.items():
        print(
            f"{name:<8} {row['reads_per_second']:>9.1f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}"
            f" {row['read_errors']:>7} {row['ready']:>6}  {row['fund_statuses']}"
        )
    verdicts = []
    for name in ("slow", "down"):
        throughput = results[name]["reads_per_second"] / normal["reads_per_second"]  # type: ignore[operator]
        p99 = results[name]["p99_ms"] / normal["p99_ms"]  # type: ignore[operator]
        ok = throughput >= 0.8 and p99 <= 2.0
        verdicts.append(ok)
        print(
            f"{name}: throughput {throughput:.2f}x normal (target >= 0.8), p99 {p99:.2f}x normal (target <= 2)"
            f" -> {'met' if ok else 'MISSED'}"
        )
    if not all(verdicts):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
