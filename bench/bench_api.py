"""The API's speed: each hot endpoint against a bare django-ninja "hello" behind the same middleware.

One uvicorn process serves the project (marketplace.asgi); another serves bench/hello_urls.py
(`GET /api/hello`, no database) with the project's settings, middleware and ASGI stack
(bench/hello_settings.py). wrk (Debian's package) loads each endpoint from 64 keep-alive
connections for a window, the endpoints and hello alternating, and the figures are the
requests per second, p50 and p99 that wrk prints, and each endpoint's ratio to hello in the
same run. The endpoints: `GET /api/me`, my requests, my conversations, a shortlist of 20,
an engagement's milestones (pages of 20), and Stripe webhook ingest, of events it has not
seen (each body signed as Stripe signs, https://docs.stripe.com/webhooks#verify-events) and
of duplicates.

Then latency at half of the saturation throughput of `GET /api/me`: an open-loop generator
(bench/harness.Http connections, requests sent on a fixed schedule, each latency measured
from its scheduled time, so a slow server cannot slow the clock), p50 and p99. Last, the same
saturation run against two server processes (`uvicorn --workers 2`) on the machine's two cores.

Targets (docs/benchmarks.md, "API"): every read at least 0.7 of hello; webhook ingest of a
duplicate at least 0.8; p99 under 50 ms at half of the saturation throughput.

Run with `make bench`, or:
  BENCH_API_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vetted_bench_api \
  BENCH_API_REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/bench_api.py
BENCH_API_WINDOW (seconds, 10) and BENCH_API_ROUNDS (2) set how long each endpoint is loaded.
BENCH_API_ONLY=me,hello runs some of the endpoints only. Logs go to var/bench-api/.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.harness import Http, free_port, percentile, uvicorn

DATABASE_URL = os.environ.get("BENCH_API_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vetted_bench_api")
REDIS_URL = os.environ.get("BENCH_API_REDIS_URL", "redis://127.0.0.1:6379/4")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ["REDIS_URL"] = REDIS_URL
os.environ["DJANGO_SETTINGS_MODULE"] = "marketplace.settings"
os.environ.setdefault("LOG_LEVEL", "WARNING")
for inherited in ("PROMETHEUS_MULTIPROC_DIR", "OTEL_EXPORTER_OTLP_ENDPOINT"):
    os.environ.pop(inherited, None)

WINDOW = float(os.environ.get("BENCH_API_WINDOW", "10"))
ROUNDS = int(os.environ.get("BENCH_API_ROUNDS", "2"))
CONNECTIONS = 64
THREADS = 2
ROWS = 20
WEBHOOK_SECRET = "whsec_bench_api"  # noqa: S105 - the bench's own server, signed by the bench
NEW_EVENTS = 40_000
LOGS = ROOT / "var" / "bench-api"
SERVER_ENV = {
    "DEBUG": "false",
    "ASYNCIO_DEBUG": "false",
    "LOG_LEVEL": "WARNING",
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    # Where ingest's tasks go: a queue no worker reads (ingest is what is measured, not processing).
    "CELERY_QUEUE": "bench-api",
    "MALLOC_ARENA_MAX": "2",
}
READ_TARGET, DUPLICATE_TARGET, P99_TARGET_MS = 0.7, 0.8, 50.0
TARGETS = {"hello": None, "webhook, new events": None, "webhook, duplicate": DUPLICATE_TARGET}


@dataclass
class World:
    client: str
    request_id: int
    engagement_id: int
    duplicate: bytes


def prepare() -> World:
    """The bench's own database, migrated: a client with ROWS requests, a shortlist and conversations of ROWS, an
    engagement with ROWS milestones, and one stored Stripe event (for duplicates)."""
    import django
    import psycopg
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from accounts.services import api_token_create
    from conversations.services import conversation_open, message_send
    from hiring_requests.models import InvitationStatus
    from payments.models import StripeEvent
    from tests.factories import (
        ClientFactory,
        EngagementFactory,
        HiringRequestFactory,
        InvitationFactory,
        MilestoneFactory,
        vetted_engineer,
    )

    client = ClientFactory.create(email="bench-api-client@vetted.test")
    requests = [HiringRequestFactory.create(client=client, title=f"Request {i}") for i in range(ROWS)]
    shortlisted = requests[0]
    for i in range(ROWS):
        engineer = vetted_engineer(email=f"bench-api-engineer-{i}@vetted.test", full_name=f"Engineer {i}")
        InvitationFactory.create(
            request=shortlisted, engineer=engineer, status=InvitationStatus.ACCEPTED, responded_at=timezone.now()
        )
        conversation = conversation_open(request=shortlisted, engineer_id=engineer.pk)
        for n in range(3):
            message_send(sender=client, conversation_id=conversation.pk, body=f"Message {n}", client_msg_id=None)
    engagement = EngagementFactory.create(client=client)
    for _ in range(ROWS):
        MilestoneFactory.create(engagement=engagement)
    event = stripe_event("evt_bench_duplicate")
    StripeEvent.objects.create(stripe_id="evt_bench_duplicate", type="customer.created", payload=json.loads(event))
    return World(
        client=api_token_create(user=client, name="bench")[1],
        request_id=shortlisted.pk,
        engagement_id=engagement.pk,
        duplicate=event,
    )


def stripe_event(event_id: str) -> bytes:
    """A Stripe event of a type Vetted stores and ignores, shaped as https://docs.stripe.com/api/events/object."""
    body = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": "customer.created",
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": {"id": f"cus_{event_id[4:]}", "object": "customer", "email": "bench@vetted.test"}},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signature(body: bytes, at: int) -> str:
    """The Stripe-Signature header for `body` signed at Unix time `at` (HMAC-SHA256 of `<t>.<body>`)."""
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class Load:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk_script(name: str, path: str, token: str | None, bodies: list[bytes] | None) -> Path:
    """A wrk Lua script: GET with the token, or POST cycling through signed webhook bodies (one per request).

    The bodies are read from a file beside the script (a Lua chunk has too few constants for
    tens of thousands of literals). They are signed for 4 minutes ahead: Stripe's scheme accepts
    a timestamp up to 300 s away in either direction, so they stay valid for the whole run.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
    script = LOGS / f"wrk-{slug}.lua"
    if bodies is None:
        auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
        script.write_text(f'wrk.method = "GET"\n{auth}')
        return script
    at = int(time.time()) + 240
    data = LOGS / f"wrk-{slug}.tsv"
    data.write_bytes(b"".join(signature(body, at).encode() + b"\t" + body + b"\n" for body in bodies))
    script.write_text(
        "local requests = {}\n"
        f'for line in io.lines("{data}") do\n'
        '  local signed, body = line:match("([^\\t]+)\\t(.*)")\n'
        f'  requests[#requests + 1] = wrk.format("POST", "{path}",'
        ' {["Content-Type"] = "application/json", ["Stripe-Signature"] = signed}, body)\n'
        "end\n"
        "local n = 0\n"
        "function setup(thread) thread:set('offset', n) n = n + 1 end\n"
        "local i = 0\n"
        # Each thread takes every THREADS-th body, so no two threads send the same new event.
        f"function request() i = i + 1 return requests[((i * {THREADS} + offset) % #requests) + 1] end\n"
    )
    return script


def wrk(port: int, path: str, script: Path, seconds: float) -> Load:
    args = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--latency", "-s", str(script)]
    out = subprocess.run([*args, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout):?\s+(\d+)", out))
    return Load(rate, _latency(out, "50%"), _latency(out, "99%"), errors)


def _latency(out: str, quantile: str) -> float:
    value, unit = re.search(rf"^\s+{quantile}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# --- an open-loop generator for latency at a fixed rate --------------------------------------------


async def fixed_rate(port: int, path: str, token: str, rate: float, seconds: float) -> list[float]:
    """Send `rate` requests a second for `seconds` on a schedule; each latency (ms) counts from its scheduled time."""
    pool: asyncio.Queue[Http] = asyncio.Queue()
    # Not measured: one request on each connection first, one after the other. It opens the connections,
    # and it waits out what the server still had queued from the saturation windows before (64 requests
    # in flight there at p50 of hundreds of ms), which would otherwise be the first scheduled requests' wait.
    for _ in range(CONNECTIONS):
        http = Http(port)
        await http.request("GET", path, token)
        pool.put_nowait(http)
    latencies: list[float] = []
    start = time.perf_counter() + 0.1

    async def one(due: float) -> None:
        http = await pool.get()
        try:
            status, _ = await http.request("GET", path, token)
        finally:
            pool.put_nowait(http)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}")
        latencies.append((time.perf_counter() - due) * 1000)

    # Each request is started at its time by one loop, not made up front as hundreds of sleeping tasks:
    # making those took longer than the head start, and the first requests were "late" by it.
    sent = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sent.append(asyncio.create_task(one(due)))
    await asyncio.gather(*sent)
    while not pool.empty():
        pool.get_nowait().close()
    return latencies


# --- the run --------------------------------------------------------------------------------------


def main() -> None:
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (Debian's package)")
    world = prepare()
    new_bodies = [stripe_event(f"evt_bench_{i:06d}") for i in range(NEW_EVENTS)]
    milestones = f"/api/payments/engagements/{world.engagement_id}/milestones"
    endpoints = {
        "GET /api/me": ("/api/me", world.client, None),
        "my requests": ("/api/requests", world.client, None),
        "my conversations": ("/api/conversations", world.client, None),
        f"a shortlist of {ROWS}": (f"/api/requests/{world.request_id}/shortlist", world.client, None),
        f"milestones, {ROWS} a page": (milestones, world.client, None),
        "webhook, duplicate": ("/api/payments/stripe/webhook", None, [world.duplicate]),
        "webhook, new events": ("/api/payments/stripe/webhook", None, new_bodies),
    }
    only = set(filter(None, os.environ.get("BENCH_API_ONLY", "").split(",")))
    if only:
        endpoints = {name: e for name, e in endpoints.items() if any(word in name for word in only)}
    scripts = {name: wrk_script(name, path, token, bodies) for name, (path, token, bodies) in endpoints.items()}
    hello_script = wrk_script("hello", "/api/hello", None, None)
    hello_port, port = free_port(), free_port()
    results: dict[str, list[Load]] = {name: [] for name in ["hello", *endpoints]}
    with contextlib.ExitStack() as stack:
        stack.enter_context(uvicorn("marketplace.asgi:application", port, SERVER_ENV, LOGS / "server.log"))
        hello_env = {**SERVER_ENV, "DJANGO_SETTINGS_MODULE": "bench.hello_settings"}
        stack.enter_context(uvicorn("marketplace.asgi:application", hello_port, hello_env, LOGS / "hello.log"))
        wrk(hello_port, "/api/hello", hello_script, 2)
        for name, (path, _, _) in endpoints.items():
            wrk(port, path, scripts[name], 2)  # warm: the first request of each kind compiles and connects
        for _ in range(ROUNDS):
            results["hello"].append(wrk(hello_port, "/api/hello", hello_script, WINDOW))
            for name, (path, _, _) in endpoints.items():
                results[name].append(wrk(port, path, scripts[name], WINDOW))
        saturation = _mean([load.rate for load in results.get("GET /api/me", [])] or [0.0])
        half = asyncio.run(fixed_rate(port, "/api/me", world.client, saturation / 2, WINDOW)) if saturation else []
    two = _two_processes(world) if "GET /api/me" in endpoints else None
    report(results, saturation, half, two)


def _two_processes(world: World) -> tuple[float, float]:
    """`GET /api/me` at saturation: one server process, then two (`--workers 2`), in the same run."""
    rates = []
    script = wrk_script("two processes", "/api/me", world.client, None)
    for workers in (1, 2):
        port = free_port()
        with uvicorn("marketplace.asgi:application", port, SERVER_ENV, LOGS / f"w{workers}.log", workers=workers):
            wrk(port, "/api/me", script, 2)
            rates.append(wrk(port, "/api/me", script, WINDOW).rate)
    return rates[0], rates[1]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def report(
    results: dict[str, list[Load]], saturation: float, half: list[float], two: tuple[float, float] | None
) -> None:
    hello = _mean([load.rate for load in results["hello"]])
    print(f"\n== API speed: one uvicorn process, wrk -t{THREADS} -c{CONNECTIONS}, {ROUNDS} x {WINDOW:.0f} s a figure")
    print(f"{'endpoint':<26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x hello':>8}  target")
    met = True
    for name, loads in results.items():
        rate = _mean([load.rate for load in loads])
        p50, p99 = _mean([load.p50_ms for load in loads]), _mean([load.p99_ms for load in loads])
        errors = sum(load.errors for load in loads)
        target = {"hello": None, "webhook, new events": None, "webhook, duplicate": DUPLICATE_TARGET}.get(
            name, READ_TARGET
        )
        verdict = "" if target is None else f">= {target:.1f} " + ("met" if rate / hello >= target else "MISSED")
        met = met and (target is None or rate / hello >= target) and errors == 0
        note = f"  ({errors} errors)" if errors else ""
        print(f"{name:<26} {rate:8.1f} {p50:8.2f} {p99:8.2f} {rate / hello:8.3f}  {verdict}{note}")
    if half:
        p99 = percentile(half, 0.99)
        ok = p99 < P99_TARGET_MS
        met = met and ok
        print(
            f"\nGET /api/me at half of saturation ({saturation / 2:.0f} req/s, open loop, {len(half)} requests):"
            f" p50 {percentile(half, 0.5):.2f} ms, p99 {p99:.2f} ms"
            f" (target < {P99_TARGET_MS:.0f}) -> {'met' if ok else 'MISSED'}"
        )
    if two:
        print(
            f"\nGET /api/me, one process {two[0]:.1f} req/s, two processes {two[1]:.1f} req/s: {two[1] / two[0]:.2f}x"
        )
    if not met:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
