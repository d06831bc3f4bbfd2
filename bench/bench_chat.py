"""Chat through a real ASGI server: delivery latency and throughput, the cost of persistence, leaks, idle memory.

For rooms of 2, 10 and 50 connections, one member sends messages (each persisted
in PostgreSQL, then broadcast); every connection in the room times each
delivery. The same run is repeated with the in-memory channel layer as the
baseline, so the ratio shows what Redis costs. In the same Redis server process,
a bare Channels echo room (bench/echo_asgi.py: no database, no authentication)
gives the baseline for the cost of persistence. Then 200 chat sockets vanish
abruptly (TCP aborted mid-send) while a room keeps chatting, and the slots and
group memberships left behind are counted. Last, one server process holds 5,000
idle connections: memory per connection and handshake p99.

Run with `make bench`, or:
  BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vetted_bench \
  BENCH_REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/bench_chat.py
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.harness import percentile, rss_kib

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vetted_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

ROOMS = [2, 10, 50]
MESSAGES = 200
IDLE_CONNECTIONS = 5_000
DISCONNECTS = 200
PORT = 8766
PREFIX = "vt-bench"
# The server's warnings and errors, for when a figure looks wrong.
SERVER_LOG = Path(os.environ.get("BENCH_SERVER_LOG", str(ROOT / "var" / "bench-chat-server.log")))
SERVER_ENV = {
    "CHANNEL_LAYER_PREFIX": PREFIX,
    "CHAT_MAX_CONNECTIONS_PER_USER": "5000",
    "NOTIFICATIONS_MAX_CONNECTIONS_PER_USER": "10000",
    "CHAT_RATE_PER_SECOND": "10000",
    "CHAT_RATE_BURST": "10000",
    "DATABASE_POOL_MAX_SIZE": "20",
    "LOG_LEVEL": "WARNING",
    # Measured as deployed: asyncio's debug mode (on by default in development) costs time of its own.
    "ASYNCIO_DEBUG": "false",
}


def prepare() -> tuple[int, str, str]:
    """A conversation between a bench client and a bench engineer, and a token for each.

    The bench's Redis database is emptied first: group memberships left by an earlier,
    interrupted run would make every broadcast fan out to dead channels.
    """
    import django
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()

    os.environ["REDIS_URL"] = REDIS_URL
    from bench.bench_matching import ensure_database

    ensure_database()
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import Role, User
    from accounts.services import api_token_create
    from conversations.models import Conversation
    from hiring_requests.models import HiringRequest

    client, _ = User.objects.get_or_create(email="chat-client@vetted.test", defaults={"role": Role.CLIENT})
    engineer, _ = User.objects.get_or_create(email="chat-engineer@vetted.test", defaults={"role": Role.ENGINEER})
    request, _ = HiringRequest.objects.get_or_create(
        client=client,
        title="chat bench",
        defaults={
            "description": "chat bench",
            "required_skills": ["python"],
            "budget_kind": "hourly",
            "budget_minor": 10_000,
            "currency": "usd",
            "hours_per_week": 10,
            "time_zone": "UTC",
            "start_date": "2099-01-01",
        },
    )
    conversation, _ = Conversation.objects.get_or_create(request=request, engineer=engineer, client=client)
    return conversation.pk, api_token_create(user=client, name="b")[1], api_token_create(user=engineer, name="b")[1]


@contextmanager
def server(redis: bool) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **SERVER_ENV}
    if redis:
        env["REDIS_URL"] = REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.echo_asgi:application",
            "--port",
            str(PORT),
            "--log-level",
            "warning",
            "--ws-max-queue",
            "64",
        ],
        cwd=ROOT,
        env=env,
        stdout=SERVER_LOG.open("ab"),
        stderr=subprocess.STDOUT,
    )
    import httpx

    for _ in range(150):
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/health/live", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


async def room(conversation_id: int, members: int, tokens: tuple[str, str]) -> tuple[list[float], float]:
    import websockets

    url = f"ws://127.0.0.1:{PORT}/ws/conversations/{conversation_id}/"
    sockets = [
        await websockets.connect(url, additional_headers={"Authorization": f"Bearer {tokens[i % 2]}"}, max_queue=None)
        for i in range(members)
    ]
    latencies: list[float] = []
    done = asyncio.Event()
    expected = MESSAGES * members

    async def receive(socket: Any) -> None:
        async for raw in socket:
            frame = json.loads(raw)
            if frame["type"] == "message" and frame["message"]["body"].startswith("t="):
                latencies.append((time.perf_counter() - float(frame["message"]["body"][2:])) * 1000)
                if len(latencies) >= expected:
                    done.set()

    sender = sockets[0]
    readers = [asyncio.create_task(receive(s)) for s in sockets[1:]]
    acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def sender_reader() -> None:
        async for raw in sender:
            frame = json.loads(raw)
            if frame["type"] == "ack":
                await acks.put(frame)
            elif frame["type"] == "message" and frame["message"]["body"].startswith("t="):
                latencies.append((time.perf_counter() - float(frame["message"]["body"][2:])) * 1000)
                if len(latencies) >= expected:
                    done.set()

    readers.append(asyncio.create_task(sender_reader()))
    started = time.perf_counter()
    for _ in range(MESSAGES):
        await sender.send(json.dumps({"type": "send", "body": f"t={time.perf_counter()}"}))
        await acks.get()
    await asyncio.wait_for(done.wait(), timeout=120)
    elapsed = time.perf_counter() - started
    for task in readers:
        task.cancel()
    for socket in sockets:
        await socket.close()
    return latencies, len(latencies) / elapsed


async def echo_room(members: int) -> list[float]:
    """The same pacing as `room`, through a bare Channels group: each frame is echoed to every member."""
    import websockets

    url = f"ws://127.0.0.1:{PORT}/ws/echo/bench/"
    sockets = [await websockets.connect(url, max_queue=None) for _ in range(members)]
    latencies: list[float] = []
    own: asyncio.Queue[None] = asyncio.Queue()

    async def receive(socket: Any, is_sender: bool) -> None:
        async for raw in socket:
            latencies.append((time.perf_counter() - float(str(raw)[2:])) * 1000)
            if is_sender:
                await own.put(None)

    readers = [asyncio.create_task(receive(s, i == 0)) for i, s in enumerate(sockets)]
    for _ in range(MESSAGES):
        await sockets[0].send(f"t={time.perf_counter()}")
        await own.get()  # like chat's ack: one message in flight at a time
    await asyncio.sleep(0.5)
    for task in readers:
        task.cancel()
    for socket in sockets:
        await socket.close()
    return latencies


async def vanishing(conversation_id: int, tokens: tuple[str, str]) -> tuple[int, int]:
    """DISCONNECTS sockets abort mid-send while a room of 2 chats; returns (slots left, stale group members)."""
    import redis.asyncio
    import websockets

    url = f"ws://127.0.0.1:{PORT}/ws/conversations/{conversation_id}/"
    load = asyncio.create_task(room(conversation_id, 2, tokens))

    async def vanish(i: int) -> None:
        socket = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {tokens[i % 2]}"})
        await socket.send(json.dumps({"type": "send" if i % 2 else "sync", "body": "gone", "after": 0}))
        socket.transport.abort()

    for start in range(0, DISCONNECTS, 20):
        await asyncio.gather(*(vanish(i) for i in range(start, start + 20)))
    await load
    await asyncio.sleep(3)  # the server notices each abort and cleans up
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    slots = 0
    async for key in client.scan_iter(f"{PREFIX}:slots:*"):
        slots += int(await client.zcard(key))
    members = 0
    async for key in client.scan_iter(f"{PREFIX}:group:*"):
        members += int(await client.zcard(key))
    await client.aclose()
    return slots, members


async def idle(token: str, pid: int) -> tuple[int, float, float]:
    import websockets

    url = f"ws://127.0.0.1:{PORT}/ws/notifications/"
    before = rss_kib(pid)
    handshakes, sockets = [], []
    for _ in range(IDLE_CONNECTIONS):
        t0 = time.perf_counter()
        socket = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"})
        await socket.recv()  # the hello frame: the connection is fully set up
        handshakes.append((time.perf_counter() - t0) * 1000)
        sockets.append(socket)
    await asyncio.sleep(2)
    alive = sum(1 for s in sockets if s.state.name == "OPEN")
    after = rss_kib(pid)
    for socket in sockets:
        await socket.close()
    return alive, (after - before) / IDLE_CONNECTIONS, percentile(handshakes, 0.99)


def main() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * IDLE_CONNECTIONS)), hard))
    conversation_id, client_token, engineer_token = prepare()
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    echo: list[float] = []
    leftovers = (0, 0)
    for layer, redis in (("redis", True), ("in-memory", False)):
        with server(redis):
            for members in ROOMS:
                latencies, rate = asyncio.run(room(conversation_id, members, (client_token, engineer_token)))
                results[(layer, members)] = (statistics.median(latencies), percentile(latencies, 0.99), rate)
            if redis:
                echo = asyncio.run(echo_room(2))
                leftovers = asyncio.run(vanishing(conversation_id, (client_token, engineer_token)))
    print(f"{'layer':<10} {'room':>4}  {'p50 ms':>7} {'p99 ms':>7} {'delivered/s':>11}")
    for (layer, members), (p50, p99, rate) in results.items():
        print(f"{layer:<10} {members:>4}  {p50:7.1f} {p99:7.1f} {rate:11.0f}")
    for members in ROOMS:
        redis_p50, in_memory_p50 = results[("redis", members)][0], results[("in-memory", members)][0]
        redis_rate, in_memory_rate = results[("redis", members)][2], results[("in-memory", members)][2]
        print(
            f"room {members}: Redis / in-memory p50 latency {redis_p50 / in_memory_p50:.2f}x,"
            f" throughput {redis_rate / in_memory_rate:.2f}x"
        )
    chat_p99, echo_p99 = results[("redis", 2)][1], percentile(echo, 0.99)
    print(
        f"bare Channels echo through Redis, room 2: p50 {statistics.median(echo):.1f} ms, p99 {echo_p99:.1f} ms;"
        f" chat with persistence / echo, p99: {chat_p99 / echo_p99:.2f}x (target at most 3x)"
    )
    print(
        f"{DISCONNECTS} abrupt disconnects under load: {leftovers[0]} slots and {leftovers[1]} group members left"
        " (target 0 and 0)"
    )
    with server(True) as process:
        alive, per_connection, handshake_p99 = asyncio.run(idle(engineer_token, process.pid))
    print(
        f"idle connections held by one server process: {alive}/{IDLE_CONNECTIONS};"
        f" memory {per_connection:.1f} KiB each; handshake p99 {handshake_p99:.1f} ms"
    )


if __name__ == "__main__":
    main()
