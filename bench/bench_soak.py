"""A long run on one server process and one Celery worker: memory that grows, and what tracing and metrics cost.

One uvicorn process (bench/soak_asgi.py: the project's app, traced by tracemalloc) and one
Celery worker (bench/soak_worker.py, solo pool), on PostgreSQL and Redis, run three phases
one after another:
- api: 100,000 mixed API requests from 8 keep-alive connections (a client's and an
  engineer's reads, chat messages sent over REST, a draft edited, 404s and 401s);
- websocket: 10,000 connect/disconnect cycles from 4 loops (notification sockets, chat
  sockets that send a typing frame into one shared room, some TCP connections aborted, some
  handshakes without credentials);
- matching: 2,000 matching jobs, 50 at a time: a request drafted and raised over the API,
  matched by the worker (a wave of invitations, each notified), then cancelled.
For each phase it prints both processes' RSS at its start, middle and end, the growth from
the middle to the end, what tracemalloc traces, the channel layer's receive buffer, and the
top growth sites from the middle to the end (bench/soak_probe.py: a snapshot on SIGUSR2).

Then the cost of tracing and metrics on reads: `GET /api/me` from 8 connections, in
alternating windows of the same run, against server processes without tracemalloc:
neither (bench/soak_settings.py: no request metrics middleware, no OTLP endpoint), metrics
only (in multiprocess mode, as deployed with a server and a worker), metrics with tracing
as shipped (one trace in ten sampled, its spans sent over OTLP/HTTP to bench/otlp_sink.py,
which reads and drops them), and tracing every request (`OTEL_TRACES_SAMPLER=parentbased_always_on`).

Targets: RSS growth under 5% from the middle to the end of each phase; tracing and metrics
cost at most 10% of read throughput.

Run with `make bench`, or:
  BENCH_SOAK_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vetted_bench_soak \
  BENCH_SOAK_REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/bench_soak.py
BENCH_SOAK_SCALE=0.1 runs a tenth of every count: a quick look, not the figures the targets are for.
BENCH_SOAK_PARTS=overhead (or soak) runs one of the two parts alone; both by default.
The processes' logs and tracemalloc snapshots go to var/bench-soak/.
"""

import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.harness import Http, free_port, process, rss_kib, uvicorn, wait_until

DATABASE_URL = os.environ.get("BENCH_SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vetted_bench_soak")
REDIS_URL = os.environ.get("BENCH_SOAK_REDIS_URL", "redis://127.0.0.1:6379/3")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ["REDIS_URL"] = REDIS_URL
os.environ["DJANGO_SETTINGS_MODULE"] = "marketplace.settings"
os.environ.setdefault("LOG_LEVEL", "WARNING")
for inherited in (
    "PROMETHEUS_MULTIPROC_DIR",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
):
    os.environ.pop(inherited, None)  # each server below is given exactly the telemetry it is measured with

SCALE = float(os.environ.get("BENCH_SOAK_SCALE", "1"))
API_REQUESTS = max(100, round(100_000 * SCALE))
WS_CYCLES = max(20, round(10_000 * SCALE))
MATCH_JOBS = max(20, round(2_000 * SCALE))
CONNECTIONS = 8
WS_LOOPS = 4
MATCH_BATCH = 50
ENGINEERS = 200
OVERHEAD_ROUNDS = 5
PARTS = set(os.environ.get("BENCH_SOAK_PARTS", "soak,overhead").split(","))
OVERHEAD_WINDOW = max(3.0, 10.0 * min(SCALE, 1.0))
TOP_SITES = 8
LOGS = ROOT / "var" / "bench-soak"
QUEUE = "soak"
SKILL = "soak-bench"
SERVER_ENV = {
    "DEBUG": "false",
    "ASYNCIO_DEBUG": "false",  # measured as deployed
    "LOG_LEVEL": "WARNING",
    "CELERY_QUEUE": QUEUE,
    "CHANNEL_LAYER_PREFIX": "vt-soak",
    "RATE_LIMIT_CHAT_REST": "1000000/60",
    "CHAT_RATE_PER_SECOND": "10000",
    "CHAT_RATE_BURST": "10000",
    "CHAT_MAX_CONNECTIONS_PER_USER": "1000",
    "NOTIFICATIONS_MAX_CONNECTIONS_PER_USER": "1000",
    "SOAK_PROBE_DIR": str(LOGS),
    # As docs/operations.md deploys it: glibc keeps at most two malloc arenas instead of up to
    # eight per core, one for each thread that ran a request's synchronous part.
    "MALLOC_ARENA_MAX": "2",
}


# --- the bench's data ----------------------------------------------------------------------


@dataclass
class World:
    client: str
    engineer: str
    matcher: str
    request_id: int
    draft_id: int
    conversation_id: int


def prepare() -> World:
    """The bench's own database, migrated; users, tokens, a conversation, a draft; ENGINEERS vetted for SKILL."""
    import django
    import psycopg
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # group memberships of an interrupted run would outlive it
    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from accounts.models import EngineerProfile, Role, User
    from accounts.services import api_token_create
    from conversations.models import Conversation
    from hiring_requests.models import ACTIVE_STATUSES, HiringRequest
    from vetting.models import Application, ApplicationStatus, Rubric, VettedRecord

    client, _ = User.objects.get_or_create(email="soak-client@vetted.test", defaults={"role": Role.CLIENT})
    engineer, _ = User.objects.get_or_create(email="soak-engineer@vetted.test", defaults={"role": Role.ENGINEER})
    matcher, _ = User.objects.get_or_create(email="soak-matcher@vetted.test", defaults={"role": Role.CLIENT})
    # An interrupted earlier run may have left requests open, holding the engineers' offers.
    HiringRequest.objects.filter(client=matcher, status__in=ACTIVE_STATUSES).update(status="cancelled")
    fields = {
        "description": "soak bench",
        "required_skills": ["python"],
        "budget_kind": "hourly",
        "budget_minor": 10_000,
        "currency": "usd",
        "hours_per_week": 10,
        "time_zone": "UTC",
        "start_date": "2099-01-01",
    }
    request, _ = HiringRequest.objects.get_or_create(client=client, title="soak read", defaults=fields)
    draft, _ = HiringRequest.objects.get_or_create(client=client, title="soak draft", defaults=fields)
    conversation, _ = Conversation.objects.get_or_create(request=request, engineer=engineer, client=client)
    have = User.objects.filter(email__startswith="soak-eng-").count()
    now, rubric = timezone.now(), Rubric.objects.earliest("version")
    for i in range(have, ENGINEERS):
        user = User.objects.create(email=f"soak-eng-{i}@vetted.test", role=Role.ENGINEER, full_name=f"Soak {i}")
        EngineerProfile.objects.create(
            user=user,
            skills=[SKILL, "python"],
            hourly_rate_minor=5_000,
            currency="usd",
            weekly_hours_available=40,
            time_zone="UTC",
        )
        application = Application.objects.create(
            engineer=user,
            rubric=rubric,
            status=ApplicationStatus.APPROVED,
            statement="soak",
            decided_at=now,
            level="senior",
            score_bp=8_000,
        )
        VettedRecord.objects.create(
            engineer=user,
            application=application,
            level="senior",
            score_bp=8_000,
            category_scores=[],
            vetted_at=now,
            expires_at=now + timedelta(days=365),
        )
    return World(
        client=api_token_create(user=client, name="soak")[1],
        engineer=api_token_create(user=engineer, name="soak")[1],
        matcher=api_token_create(user=matcher, name="soak")[1],
        request_id=request.pk,
        draft_id=draft.pk,
        conversation_id=conversation.pk,
    )


# --- processes ------------------------------------------------------------------------------


@contextmanager
def server(app: str, port: int, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with uvicorn(app, port, {**SERVER_ENV, **env}, log) as child:
        yield child


# --- checkpoints: RSS, and a tracemalloc snapshot taken inside the process ------------------------


@dataclass
class Probe:
    name: str
    pid: int
    taken: int = 0

    def checkpoint(self) -> dict[str, Any]:
        """RSS now, then a snapshot (SIGUSR2); returns the RSS, the snapshot's path and the process's facts."""
        rss = rss_kib(self.pid)
        os.kill(self.pid, signal.SIGUSR2)
        stem = LOGS / f"{self.name}-{self.taken}"
        wait_until(lambda: Path(f"{stem}.json").exists(), f"{self.name}'s snapshot {self.taken}", timeout=120)
        self.taken += 1
        return {"rss_kib": rss, "snapshot": f"{stem}.snapshot", **json.loads(Path(f"{stem}.json").read_text())}


@dataclass
class Phase:
    name: str
    count: int
    points: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # process -> start/middle/end
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)


def checkpoint(phase: Phase, when: str, probes: list[Probe]) -> None:
    time.sleep(1)  # the server finishes closing what the last cycle opened
    for probe in probes:
        phase.points.setdefault(probe.name, {})[when] = probe.checkpoint()


def growth_sites(middle: str, end: str) -> list[str]:
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        tracemalloc.Filter(False, "<unknown>"),
    ]
    before = tracemalloc.Snapshot.load(middle).filter_traces(ignore)
    after = tracemalloc.Snapshot.load(end).filter_traces(ignore)
    grown = [s for s in after.compare_to(before, "lineno") if s.size_diff > 0]
    grown.sort(key=lambda s: s.size_diff, reverse=True)
    lines = []
    for stat in grown[:TOP_SITES]:
        frame = stat.traceback[0]
        where = frame.filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        lines.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {where}:{frame.lineno}")
    return lines


# --- the phases -----------------------------------------------------------------------------------


def api_operations(world: World) -> list[tuple[int, Any]]:
    """(weight, make) pairs; make(n) gives (method, path, token, payload) for the n-th request."""
    c, e, conv = world.client, world.engineer, world.conversation_id
    return [
        (20, lambda n: ("GET", "/api/me", c, None)),
        (10, lambda n: ("GET", "/api/me", e, None)),
        (10, lambda n: ("GET", "/api/requests", c, None)),
        (10, lambda n: ("GET", f"/api/requests/{world.request_id}", c, None)),
        (10, lambda n: ("GET", "/api/conversations", e, None)),
        (10, lambda n: ("GET", f"/api/conversations/{conv}/messages", c, None)),
        (
            5,
            lambda n: (
                "POST",
                f"/api/conversations/{conv}/messages",
                (c, e)[n % 2],
                {"body": f"soak {n}", "client_msg_id": f"soak-{time.time_ns()}-{n}"},
            ),
        ),
        (5, lambda n: ("GET", "/api/notifications/unread", e, None)),
        (5, lambda n: ("GET", "/api/requests/invitations", e, None)),
        (5, lambda n: ("PATCH", f"/api/requests/{world.draft_id}", c, {"description": f"soak draft, edit {n}"})),
        (4, lambda n: ("GET", "/api/requests/2147483000", c, None)),  # someone else's, or nobody's: 404
        (4, lambda n: ("GET", "/api/me", None, None)),  # no credentials: 401
        (2, lambda n: ("GET", "/health/live", None, None)),
    ]


async def api_requests(connections: list[Http], world: World, count: int, seed: int, outcomes: Counter[str]) -> None:
    operations = api_operations(world)
    weights, makes = [w for w, _ in operations], [m for _, m in operations]
    numbers = itertools.count(seed * 10_000_000)

    async def loop(http: Http, rng: random.Random) -> None:
        while (n := next(numbers)) < seed * 10_000_000 + count:
            method, path, token, payload = rng.choices(makes, weights)[0](n)
            status, _ = await http.request(method, path, token, payload)
            outcomes[str(status)] += 1

    await asyncio.gather(*(loop(http, random.Random(seed * 100 + i)) for i, http in enumerate(connections)))


async def ws_cycles(port: int, world: World, count: int, seed: int, outcomes: Counter[str]) -> None:
    import websockets
    from websockets.exceptions import InvalidStatus

    numbers = itertools.count()
    auth_c, auth_e = {"Authorization": f"Bearer {world.client}"}, {"Authorization": f"Bearer {world.engineer}"}
    notifications = f"ws://127.0.0.1:{port}/ws/notifications/"
    chat = f"ws://127.0.0.1:{port}/ws/conversations/{world.conversation_id}/"

    async def cycle(kind: str, n: int) -> None:
        if kind == "refused":
            try:
                await websockets.connect(notifications)
            except InvalidStatus as exc:
                outcomes[f"refused {exc.response.status_code}"] += 1
                return
            raise AssertionError("a handshake without credentials was accepted")
        if kind == "chat":
            socket = await websockets.connect(chat, additional_headers=(auth_c, auth_e)[n % 2])
            await socket.send(json.dumps({"type": "typing"}))  # broadcast into a room whose members come and go
        else:
            socket = await websockets.connect(notifications, additional_headers=auth_e)
            if json.loads(await socket.recv())["event"] != "hello":
                raise SystemExit("a notification socket did not start with its hello frame")
        if kind == "aborted":
            socket.transport.abort()
        else:
            await socket.close()
        outcomes[kind] += 1

    async def loop(rng: random.Random) -> None:
        while (n := next(numbers)) < count:
            kind = rng.choices(["notifications", "chat", "aborted", "refused"], [70, 20, 5, 5])[0]
            await cycle(kind, n)

    await asyncio.gather(*(loop(random.Random(seed * 100 + i)) for i in range(WS_LOOPS)))


async def matching_jobs(connections: list[Http], world: World, count: int, outcomes: Counter[str]) -> None:
    """`count` requests raised, matched by the worker and cancelled, MATCH_BATCH at a time."""
    from asgiref.sync import sync_to_async

    from hiring_requests.models import HiringRequest

    body = {
        "title": "soak matching",
        "description": "a matching job of the soak bench",
        "required_skills": [SKILL],
        "budget_kind": "hourly",
        "budget_minor": 10_000,
        "currency": "usd",
        "hours_per_week": 10,
        "time_zone": "UTC",
        "min_overlap_hours": 0,
        "start_date": "2099-01-01",
        "min_level": "mid",
    }

    def matched(ids: list[int]) -> int:
        return HiringRequest.objects.filter(pk__in=ids, waves_sent__gte=1).count()

    async def each(calls: list[tuple[str, str]]) -> list[tuple[int, bytes]]:
        queue = list(enumerate(calls))
        answers: list[tuple[int, bytes]] = [(0, b"")] * len(calls)

        async def loop(http: Http) -> None:
            while queue:
                i, (method, path) = queue.pop()
                answers[i] = await http.request(method, path, world.matcher, body if path == "/api/requests" else None)

        await asyncio.gather(*(loop(http) for http in connections))
        return answers

    for start in range(0, count, MATCH_BATCH):
        size = min(MATCH_BATCH, count - start)
        created = await each([("POST", "/api/requests")] * size)
        ids = [json.loads(answer)["id"] for status, answer in created if status == 201]
        outcomes["created"] += len(ids)
        raised = await each([("POST", f"/api/requests/{pk}/raise") for pk in ids])
        outcomes["raised"] += sum(1 for status, _ in raised if status == 200)
        for _ in range(1_200):  # a minute at most
            if (done := await sync_to_async(matched)(ids)) == len(ids):
                break
            await asyncio.sleep(0.05)
        outcomes["matched"] += done
        cancelled = await each([("POST", f"/api/requests/{pk}/cancel") for pk in ids])
        outcomes["cancelled"] += sum(1 for status, _ in cancelled if status == 200)


def run_phase(phase: Phase, probes: list[Probe], first_half: Any, second_half: Any) -> None:
    checkpoint(phase, "start", probes)
    started = time.perf_counter()
    asyncio.run(first_half())
    phase.seconds += time.perf_counter() - started
    checkpoint(phase, "middle", probes)
    started = time.perf_counter()
    asyncio.run(second_half())
    phase.seconds += time.perf_counter() - started
    checkpoint(phase, "end", probes)


def soak(world: World) -> list[Phase]:
    port = free_port()
    worker_args = [
        "-m",
        "celery",
        "-A",
        "bench.soak_worker",
        "worker",
        "--pool",
        "solo",
        "-Q",
        QUEUE,
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    worker_log = LOGS / "worker.log"
    with (
        process(worker_args, env=SERVER_ENV, log=worker_log) as worker,
        server("bench.soak_asgi:application", port, {}, LOGS / "server.log") as web,
    ):
        wait_until(lambda: b"ready." in worker_log.read_bytes(), "the Celery worker starting")
        probes = [Probe("server", web.pid), Probe("worker", worker.pid)]
        api, ws, matching = Phase("api", API_REQUESTS), Phase("websocket", WS_CYCLES), Phase("matching", MATCH_JOBS)
        connections = [Http(port) for _ in range(CONNECTIONS)]
        warm: Counter[str] = Counter()

        async def warm_up() -> None:
            # Every code path once before the first figure: imports, caches and pools filled.
            await api_requests(connections, world, 2_000, 9, warm)
            await ws_cycles(port, world, 200, 9, warm)
            await matching_jobs(connections, world, MATCH_BATCH, warm)

        asyncio.run(warm_up())
        for probe in probes:
            probe.checkpoint()  # so every figure below comes after one snapshot's own memory was taken once
        half = API_REQUESTS // 2

        async def api_first() -> None:
            await api_requests(connections, world, half, 1, api.outcomes)

        async def api_second() -> None:
            await api_requests(connections, world, API_REQUESTS - half, 2, api.outcomes)

        run_phase(api, probes, api_first, api_second)
        half = WS_CYCLES // 2

        async def ws_first() -> None:
            await ws_cycles(port, world, half, 1, ws.outcomes)

        async def ws_second() -> None:
            await ws_cycles(port, world, WS_CYCLES - half, 2, ws.outcomes)

        run_phase(ws, probes, ws_first, ws_second)
        half = (MATCH_JOBS // 2) // MATCH_BATCH * MATCH_BATCH or MATCH_JOBS // 2

        async def matching_first() -> None:
            await matching_jobs(connections, world, half, matching.outcomes)

        async def matching_second() -> None:
            await matching_jobs(connections, world, MATCH_JOBS - half, matching.outcomes)

        run_phase(matching, probes, matching_first, matching_second)
        for http in connections:
            http.close()
    return [api, ws, matching]


def report_soak(phases: list[Phase]) -> bool:
    met = True
    for phase in phases:
        rate = phase.count / phase.seconds
        print(
            f"\n== {phase.name}: {phase.count:,} in {phase.seconds:.0f} s ({rate:,.0f}/s);"
            f" outcomes {dict(sorted(phase.outcomes.items()))}"
        )
        for name, points in phase.points.items():
            start, middle, end = points["start"], points["middle"], points["end"]
            growth = (end["rss_kib"] - middle["rss_kib"]) / middle["rss_kib"] * 100
            ok = growth < 5
            met = met and ok
            print(
                f"{name:<6} RSS MiB start {start['rss_kib'] / 1024:6.1f}  middle {middle['rss_kib'] / 1024:6.1f}"
                f"  end {end['rss_kib'] / 1024:6.1f}  middle->end {growth:+5.2f}% (target < 5%)"
                f" -> {'met' if ok else 'MISSED'}"
            )
            print(
                f"       traced MiB {start['traced_kib'] / 1024:6.1f} {middle['traced_kib'] / 1024:6.1f}"
                f" {end['traced_kib'] / 1024:6.1f};  receive buffer entries"
                f" {start['receive_buffer']} {middle['receive_buffer']} {end['receive_buffer']}"
            )
            print("       top growth sites, middle -> end:")
            for line in growth_sites(middle["snapshot"], end["snapshot"]):
                print(f"         {line}")
    return met


# --- tracing and metrics, on and off --------------------------------------------------------------


async def read_window(port: int, token: str, seconds: float) -> tuple[int, list[float]]:
    connections = [Http(port) for _ in range(CONNECTIONS)]
    latencies: list[float] = []
    until = time.monotonic() + seconds

    async def loop(http: Http) -> None:
        while time.monotonic() < until:
            started = time.perf_counter()
            status, _ = await http.request("GET", "/api/me", token)
            if status != 200:
                raise SystemExit(f"GET /api/me answered {status}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(loop(http) for http in connections))
    for http in connections:
        http.close()
    return len(latencies), latencies


def overhead(world: World) -> dict[str, tuple[float, float]]:
    """Reads/s and p50 ms for each configuration, over OVERHEAD_ROUNDS alternating windows."""
    sink_port = free_port()
    multiproc = LOGS / "prometheus"
    shutil.rmtree(multiproc, ignore_errors=True)
    multiproc.mkdir(parents=True)
    configs = {
        "neither": {"DJANGO_SETTINGS_MODULE": "bench.soak_settings"},
        "metrics": {"PROMETHEUS_MULTIPROC_DIR": str(multiproc)},
        # As shipped: the default sampler, one trace in ten (and every trace a sampled caller asks for).
        "metrics+tracing": {
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        },
        # Every request traced: what an operator pays for `OTEL_TRACES_SAMPLER=parentbased_always_on`.
        "tracing everything": {
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        },
    }
    ports = {name: free_port() for name in configs}
    counts: dict[str, int] = dict.fromkeys(configs, 0)
    latencies: dict[str, list[float]] = {name: [] for name in configs}
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(["bench/otlp_sink.py", str(sink_port)], env={}, log=LOGS / "sink.log"))
        for name, env in configs.items():
            stack.enter_context(server("marketplace.asgi:application", ports[name], env, LOGS / f"{name}.log"))
        for name in configs:
            asyncio.run(read_window(ports[name], world.client, 2.0))  # warm
        for _ in range(OVERHEAD_ROUNDS):
            for name in configs:
                count, seen = asyncio.run(read_window(ports[name], world.client, OVERHEAD_WINDOW))
                counts[name] += count
                latencies[name] += seen
        sunk = int(socket_get(sink_port, "/"))
    total = OVERHEAD_ROUNDS * OVERHEAD_WINDOW
    print(f"(the OTLP sink read {sunk / 1024 / 1024:.1f} MiB of spans)")
    return {name: (counts[name] / total, statistics.median(latencies[name]) * 1000) for name in configs}


def socket_get(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(4096):  # the head and the body may come in separate reads
            answer += chunk
        return answer.split(b"\r\n\r\n", 1)[1].decode()


def report_overhead(results: dict[str, tuple[float, float]]) -> bool:
    base = results["neither"][0]
    print(
        f"\n== tracing and metrics: GET /api/me from {CONNECTIONS} connections,"
        f" {OVERHEAD_ROUNDS} alternating windows of {OVERHEAD_WINDOW:.0f} s each"
    )
    for name, (rate, p50) in results.items():
        print(f"{name:<20} {rate:8.1f} reads/s  p50 {p50:6.2f} ms  {rate / base:5.3f}x neither")
    ratio = results["metrics+tracing"][0] / base
    ok = ratio >= 0.9
    print(f"tracing and metrics on / off: {ratio:.3f}x read throughput (target >= 0.90) -> {'met' if ok else 'MISSED'}")
    return ok


def main() -> None:
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    world = prepare()
    print(
        f"scale {SCALE:g}: {API_REQUESTS:,} API requests, {WS_CYCLES:,} websocket cycles, {MATCH_JOBS:,} matching jobs"
    )
    memory_met = report_soak(soak(world)) if "soak" in PARTS else True
    overhead_met = report_overhead(overhead(world)) if "overhead" in PARTS else True
    for snapshot in LOGS.glob("*.snapshot"):
        snapshot.unlink()  # tens of MiB each; the figures above are what they were for
    if not (memory_met and overhead_met):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
