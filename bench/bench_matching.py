"""Matching at 100,000 vetted engineers on PostgreSQL.

Prints:
  1. time to rank one request in SQL (median, p99 over 100 requests);
  2. the same requests ranked by a plain Python loop over every engineer
     (bench/matching_naive.py), on the same data, in the same run;
  3. raise-to-first-invitation: an HTTP raise, a real Celery worker's wave, the
     invitation arriving on the engineer's websocket (median, p99 over 50).

Run with `make bench` (PostgreSQL and Redis on 127.0.0.1), or:
  BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vetted_bench \
  BENCH_REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/bench_matching.py
The 100,000 engineers are seeded once into their own database and reused.
"""

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vetted_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ["REDIS_URL"] = REDIS_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

ENGINEERS = int(os.environ.get("BENCH_ENGINEERS", "100000"))
RANK_REQUESTS = 100
LIVE_REQUESTS = 50
SKILLS = [
    "python",
    "asyncio",
    "django",
    "fastapi",
    "flask",
    "postgresql",
    "mysql",
    "redis",
    "celery",
    "kafka",
    "rabbitmq",
    "docker",
    "kubernetes",
    "aws",
    "gcp",
    "terraform",
    "graphql",
    "grpc",
    "httpx",
    "aiohttp",
    "sqlalchemy",
    "pydantic",
    "pytest",
    "typescript",
    "react",
    "go",
    "rust",
    "java",
    "elasticsearch",
    "mongodb",
    "channels",
    "websockets",
    "stripe",
    "linux",
    "nginx",
    "prometheus",
    "opentelemetry",
    "airflow",
    "spark",
    "pandas",
]
ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Lisbon",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/Bogota",
    "America/Mexico_City",
]
LEVELS = ["junior", "mid", "senior", "staff"]


def ensure_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def seed() -> None:
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import EngineerProfile, Role, User
    from marketplace.timezones import utc_offset_minutes
    from vetting.models import Application, ApplicationStatus, Rubric, VettedRecord

    call_command("migrate", verbosity=0)
    have = User.objects.filter(email__startswith="bench-eng-").count()
    if have >= ENGINEERS:
        print(f"seed: {have} engineers already in {DATABASE_URL.rsplit('/', 1)[1]}")
        return
    started = time.perf_counter()
    rng = random.Random(7)
    rubric = Rubric.objects.earliest("version")
    now = timezone.now()
    offsets = {zone: utc_offset_minutes(zone) for zone in ZONES}
    password = make_password(None)
    batch = 5_000
    for start in range(have, ENGINEERS, batch):
        stop = min(start + batch, ENGINEERS)
        with transaction.atomic():
            users = User.objects.bulk_create(
                User(
                    email=f"bench-eng-{i}@vetted.test", password=password, role=Role.ENGINEER, full_name=f"Engineer {i}"
                )
                for i in range(start, stop)
            )
            profiles, applications = [], []
            for user in users:
                zone = rng.choice(ZONES)
                core = rng.sample(SKILLS[:12], rng.randint(1, 4))
                extra = rng.sample(SKILLS, rng.randint(1, 4))
                profiles.append(
                    EngineerProfile(
                        user=user,
                        headline="Backend engineer",
                        skills=sorted(set(core + extra)),
                        hourly_rate_minor=rng.randrange(3_000, 20_000, 100),
                        currency="usd" if rng.random() < 0.85 else "eur",
                        weekly_hours_available=rng.choice([0, 10, 20, 30, 40]),
                        time_zone=zone,
                        utc_offset_minutes=offsets[zone],
                        years_experience=rng.randint(1, 20),
                    )
                )
                score = rng.randint(4_000, 10_000)
                level = (
                    "staff" if score >= 8_750 else "senior" if score >= 7_500 else "mid" if score >= 6_000 else "junior"
                )
                applications.append(
                    Application(
                        engineer=user,
                        rubric=rubric,
                        status=ApplicationStatus.APPROVED,
                        statement="seeded",
                        decided_at=now,
                        level=level,
                        score_bp=score,
                    )
                )
            EngineerProfile.objects.bulk_create(profiles)
            Application.objects.bulk_create(applications)
            VettedRecord.objects.bulk_create(
                VettedRecord(
                    engineer_id=a.engineer_id,
                    application=a,
                    level=a.level,
                    score_bp=a.score_bp or 0,
                    category_scores=[],
                    vetted_at=now - timedelta(days=rng.randint(0, 300)),
                    expires_at=now + timedelta(days=rng.randint(-30, 365)),
                )
                for a in applications
            )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seed: {ENGINEERS - have} engineers in {time.perf_counter() - started:.0f} s")


HISTORY_REQUESTS = 3_000  # 2,000 closed (20 offers each), 800 hired (an active engagement), 200 matching
HISTORY_TITLE = "bench-history"


def seed_history() -> None:
    """Offers and engagements, so ranking reads real capacity, load and responsiveness rows.

    43,000 offers (40,000 on closed requests, answered or expired; 600 pending) and
    800 active engagements, spread at random over the engineers.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Role, User
    from hiring_requests.models import Engagement, HiringRequest, Invitation

    if HiringRequest.objects.filter(title=HISTORY_TITLE).exists():
        return
    started = time.perf_counter()
    rng = random.Random(13)
    now = timezone.now()
    engineer_ids = list(User.objects.filter(email__startswith="bench-eng-").values_list("pk", flat=True))
    client = User.objects.create(email="bench-history-client@vetted.test", role=Role.CLIENT, full_name="History")
    with transaction.atomic():
        requests = HiringRequest.objects.bulk_create(
            HiringRequest(
                client=client,
                title=HISTORY_TITLE,
                description="history",
                required_skills=["python"],
                budget_kind="hourly",
                budget_minor=10_000,
                currency="usd",
                hours_per_week=10,
                time_zone="UTC",
                start_date="2026-01-05",
                raised_at=now,
                status="closed" if i < 2_000 else "hired" if i < 2_800 else "matching",
            )
            for i in range(HISTORY_REQUESTS)
        )
        invitations, engagements = [], []
        for request in requests:
            invited = rng.sample(engineer_ids, 20 if request.status == "closed" else 3)
            for position, engineer_id in enumerate(invited, start=1):
                status = rng.choice(["accepted", "declined", "declined", "expired"])
                if request.status == "matching":
                    status = "pending"
                invitations.append(
                    Invitation(
                        request=request,
                        engineer_id=engineer_id,
                        wave=1,
                        rank=position,
                        score_bp=5_000,
                        breakdown={},
                        status=status,
                        sent_at=now,
                        expires_at=now + timedelta(hours=2),
                        sent_off_hours=rng.random() < 0.2,
                        offered_rate_minor=10_000,
                        offered_hours_per_week=10,
                    )
                )
            if request.status == "hired":
                engagements.append(
                    Engagement(
                        request=request,
                        client=client,
                        engineer_id=invited[0],
                        rate_kind="hourly",
                        rate_minor=10_000,
                        currency="usd",
                        hours_per_week=10,
                    )
                )
        Invitation.objects.bulk_create(invitations, batch_size=5_000)
        Engagement.objects.bulk_create(engagements)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"seed: {len(invitations)} offers and {len(engagements)} engagements in {time.perf_counter() - started:.0f} s"
    )


def random_requests(count: int, seed_value: int) -> list[Any]:
    from hiring_requests.models import HiringRequest

    rng = random.Random(seed_value)
    requests = []
    for _ in range(count):
        required = rng.sample(SKILLS[:12], rng.randint(1, 3))
        nice = rng.sample([s for s in SKILLS if s not in required], rng.randint(0, 2))
        requests.append(
            HiringRequest(
                title="bench",
                description="bench",
                required_skills=sorted(required),
                nice_to_have_skills=sorted(nice),
                min_level=rng.choice(["mid", "mid", "senior"]),
                budget_kind="hourly",
                budget_minor=rng.randrange(6_000, 16_000, 500),
                currency="usd",
                hours_per_week=rng.choice([10, 20, 30]),
                time_zone=rng.choice(ZONES),
                min_overlap_hours=rng.randint(2, 6),
                start_date="2027-01-04",
            )
        )
    return requests


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_ranking() -> None:
    from bench.matching_naive import load_world, rank_naive
    from hiring_requests import matching

    requests = random_requests(RANK_REQUESTS, 11)
    criteria = [matching.criteria_for(r) for r in requests]
    matching.rank(criteria[0], limit=5)  # warm the pool and the caches
    ours, results = [], []
    for c in criteria:
        t0 = time.perf_counter()
        results.append(matching.rank(c, limit=5))
        ours.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    world = load_world()
    load_ms = (time.perf_counter() - t0) * 1000
    naive, agree = [], 0
    for c, ranked in zip(criteria, results, strict=True):
        t0 = time.perf_counter()
        expected = rank_naive(c, limit=5, request_id=None, world=world)
        naive.append((time.perf_counter() - t0) * 1000)
        agree += [(r.engineer_id, r.score_bp) for r in ranked] == expected
    print(f"engineers: {len(world['profiles'])} (current vetted records: {len(world['records'])})")
    print(f"rank in SQL:              median {statistics.median(ours):7.1f} ms   p99 {percentile(ours, 0.99):7.1f} ms")
    print(
        f"naive loop, data in RAM:  median {statistics.median(naive):7.1f} ms   p99 {percentile(naive, 0.99):7.1f} ms"
    )
    print(f"naive: reading every engineer once: {load_ms:.0f} ms")
    print(
        f"ratio (naive loop / SQL, medians): {statistics.median(naive) / statistics.median(ours):.1f}x;"
        f" with the read: {(statistics.median(naive) + load_ms) / statistics.median(ours):.1f}x"
    )
    print(f"same top 5 as the naive loop: {agree}/{len(criteria)} requests")


def bench_raise_to_invitation() -> None:
    import httpx
    from django.utils import timezone

    from accounts.models import EngineerProfile, Role, User
    from accounts.services import api_token_create
    from vetting.models import Application, ApplicationStatus, Rubric, VettedRecord

    now = timezone.now()
    client, _ = User.objects.get_or_create(email="bench-client@vetted.test", defaults={"role": Role.CLIENT})
    probes = []
    for i in range(5):
        user, created = User.objects.get_or_create(
            email=f"bench-probe-{i}@vetted.test", defaults={"role": Role.ENGINEER}
        )
        if created:
            EngineerProfile.objects.create(
                user=user,
                skills=["bench-probe", "python"],
                hourly_rate_minor=5_000,
                currency="usd",
                weekly_hours_available=40,
                time_zone="UTC",
            )
            app = Application.objects.create(
                engineer=user,
                rubric=Rubric.objects.earliest("version"),
                status=ApplicationStatus.APPROVED,
                statement="probe",
                decided_at=now,
                level="senior",
                score_bp=8_000,
            )
            VettedRecord.objects.create(
                engineer=user,
                application=app,
                level="senior",
                score_bp=8_000,
                category_scores=[],
                vetted_at=now,
                expires_at=now + timedelta(days=365),
            )
        probes.append(api_token_create(user=user, name="bench")[1])
    client_token = api_token_create(user=client, name="bench")[1]
    # An interrupted earlier run may have left probe requests open, holding the probes' hours.
    from hiring_requests.models import ACTIVE_STATUSES, HiringRequest

    HiringRequest.objects.filter(client=client, status__in=ACTIVE_STATUSES).update(status="cancelled")

    port = 8765
    env = {**os.environ, "CELERY_QUEUE": "bench", "LOG_LEVEL": "WARNING"}
    python = sys.executable
    worker = subprocess.Popen(
        [
            python,
            "-m",
            "celery",
            "-A",
            "marketplace",
            "worker",
            "--pool",
            "solo",
            "-Q",
            "bench",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [python, "-m", "uvicorn", "marketplace.asgi:application", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        time.sleep(3)  # the worker's start-up
        latencies = asyncio.run(_raise_and_wait(base, client_token, probes))
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(timeout=20)
    print(f"raise to first invitation on the websocket (real worker, Redis), {len(latencies)} requests:")
    median, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    print(f"                          median {median:7.1f} ms   p99 {p99:7.1f} ms")


async def _raise_and_wait(base: str, client_token: str, probe_tokens: list[str]) -> list[float]:
    import httpx
    import websockets

    ws_url = base.replace("http://", "ws://") + "/ws/notifications/"
    arrivals: dict[int, float] = {}
    got = asyncio.Event()

    async def listen(token: str) -> None:
        async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
            async for raw in socket:
                frame = json.loads(raw)
                if frame["event"] == "invitation.created":
                    arrivals.setdefault(frame["payload"]["request_id"], time.perf_counter())
                    got.set()

    listeners = [asyncio.create_task(listen(t)) for t in probe_tokens]
    headers = {"Authorization": f"Bearer {client_token}"}
    latencies = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        await asyncio.sleep(0.5)
        body = {
            "title": "bench",
            "description": "raise-to-invitation probe",
            "required_skills": ["bench-probe"],
            "budget_kind": "hourly",
            "budget_minor": 10_000,
            "currency": "usd",
            "hours_per_week": 10,
            "time_zone": "UTC",
            "min_overlap_hours": 0,
            "start_date": "2099-01-01",
            "min_level": "mid",
        }
        for _ in range(LIVE_REQUESTS):
            request_id = (await http.post("/api/requests", json=body)).json()["id"]
            got.clear()
            t0 = time.perf_counter()
            await http.post(f"/api/requests/{request_id}/raise")
            while request_id not in arrivals:
                await asyncio.wait_for(got.wait(), timeout=15)
                got.clear()
            latencies.append((arrivals[request_id] - t0) * 1000)
            # Withdraws the probes' offers: open offers hold their hours and are capped per engineer.
            await http.post(f"/api/requests/{request_id}/cancel")
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    return latencies


def main() -> None:
    ensure_database()
    import django

    django.setup()
    seed()
    seed_history()
    bench_ranking()
    bench_raise_to_invitation()


if __name__ == "__main__":
    main()
