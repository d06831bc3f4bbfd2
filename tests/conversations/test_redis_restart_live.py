"""Redis restarted under a live chat: REST keeps working, sockets come back, a resyncing client loses nothing."""

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from accounts.services import api_token_create
from tests.conversations.conftest import conversation_between
from tests.factories import ClientFactory, vetted_engineer
from tests.processes import asgi_server, free_port, running, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _redis_args(port: int, tmp_path: Path) -> list[str]:
    # `running` starts `python <args>`: run redis-server through a tiny exec so it is stopped like the rest.
    server = f"import os; os.execvp('redis-server', ['redis-server', '--port', '{port}', '--save', '', "
    server += f"'--appendonly', 'no', '--dir', '{tmp_path}'])"
    return ["-c", server]


class Reader:
    """A chat client that reconnects after any close and resyncs from the last seq it saw."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.seqs: list[int] = []
        self.closes: list[int | None] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with websockets.connect(
                    self.url, additional_headers={"Authorization": f"Bearer {self.token}"}, open_timeout=5
                ) as ws:
                    await ws.send(json.dumps({"type": "sync", "after": self.seqs[-1] if self.seqs else 0}))
                    while not stop.is_set():
                        try:
                            frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.5))
                        except TimeoutError:
                            continue
                        self._take(frame)
            except websockets.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, websockets.InvalidStatus, TimeoutError):
                self.closes.append(None)  # refused while Redis is away: try again shortly
            await asyncio.sleep(0.3)

    def _take(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "message":
            messages = [frame["message"]]
        elif frame["type"] == "sync":
            messages = frame["messages"]
        else:
            return
        for message in messages:
            if not self.seqs or message["seq"] > self.seqs[-1]:
                if message["seq"] in self.seqs:
                    continue
                self.seqs.append(message["seq"])


def test_redis_restarting_during_a_live_chat_loses_no_message_to_a_resyncing_client(rubric, tmp_path: Path):
    client, engineer = ClientFactory.create(), vetted_engineer()
    conversation = conversation_between(client, engineer)
    client_token = api_token_create(user=client, name="rest")[1]
    engineer_token = api_token_create(user=engineer, name="ws")[1]
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    env = {"REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, "CHANNEL_LAYER_PREFIX": "vt-restart"}

    redis_log = tmp_path / "redis.log"
    redis_process = running(_redis_args(port, tmp_path), env={}, log=redis_log)
    redis_process.__enter__()
    try:
        wait_until(lambda: _redis_answers(port), timeout=10, what="redis to start")
        with asgi_server(log_dir=tmp_path, env=env) as base:
            url = base.replace("http://", "ws://") + f"/ws/conversations/{conversation.pk}/"
            headers = {"Authorization": f"Bearer {client_token}"}
            sent: list[int] = []
            statuses: list[int] = []

            def post(body: str) -> None:
                response = httpx.post(
                    f"{base}/api/conversations/{conversation.pk}/messages",
                    json={"body": body},
                    headers=headers,
                    timeout=10,
                )
                statuses.append(response.status_code)
                if response.status_code == 201:
                    sent.append(response.json()["seq"])

            async def scenario() -> Reader:
                nonlocal redis_process
                reader, stop = Reader(url, engineer_token), asyncio.Event()
                reading = asyncio.create_task(reader.run(stop))
                await asyncio.sleep(1)
                await asyncio.to_thread(post, "before the restart")
                await asyncio.sleep(0.5)
                redis_process.__exit__(None, None, None)  # Redis goes away
                await asyncio.to_thread(post, "while Redis is down")
                await asyncio.sleep(1)
                redis_process = running(_redis_args(port, tmp_path), env={}, log=tmp_path / "redis-2.log")
                redis_process.__enter__()
                await asyncio.to_thread(wait_until, lambda: _redis_answers(port), timeout=10, what="redis again")
                await asyncio.to_thread(post, "after the restart")
                deadline = time.monotonic() + 20
                # Polls state another task fills in, under a deadline.
                while time.monotonic() < deadline and (not sent or not reader.seqs or reader.seqs[-1] < max(sent)):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                stop.set()
                await reading
                return reader

            reader = asyncio.run(scenario())
            server_log = (tmp_path / "server.log").read_text()
    finally:
        redis_process.__exit__(None, None, None)

    assert statuses == [201, 201, 201]  # REST chat works with Redis away: the database is the record
    assert set(sent) <= set(reader.seqs)  # every message reached the reader, through the live push or a resync
    assert reader.seqs == sorted(set(reader.seqs))  # in order, each once
    assert reader.closes  # the socket did go down with Redis...
    assert "Traceback" not in server_log  # ...and came back without a server error
