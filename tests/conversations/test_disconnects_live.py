"""Clients that vanish at random points, against a real server on Redis: nothing leaks.

A Hypothesis state machine drops chat sockets abruptly (the TCP connection is
aborted, no close frame) in the middle of a send, in the middle of a sync, after
an abuse close while still sending, and while the consumer waits on a row lock.
After every run no slot and no group membership is left, the user can open the
full cap of sockets again, and the server logged no error and no slow callback.
"""

import asyncio
import json
import os
import threading
import uuid
from pathlib import Path

import pytest
import redis
import websockets
from django.db import connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from accounts.services import api_token_create
from conversations.models import Conversation
from tests.conversations.conftest import conversation_between
from tests.factories import ClientFactory, vetted_engineer
from tests.processes import asgi_server, needs_redis, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("slots and group memberships are read back from Redis"),
]

CAP = 3


def _abort(ws: websockets.ClientConnection) -> None:
    """Vanish: drop the TCP connection without a close frame."""
    ws.transport.abort()


async def _open(url: str, token: str) -> websockets.ClientConnection:
    return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10)


def _leftovers(prefix: str, user_id: int, conversation_id: int) -> int:
    """Slots held by the user plus memberships of the conversation's and the user's control group."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        keys = [f"{prefix}:slots:chat:{user_id}", f"{prefix}:group:conversation.{conversation_id}"]
        keys.append(f"{prefix}:group:control.{user_id}")
        return sum(int(client.zcard(key)) for key in keys)
    finally:
        client.close()


def _hold_lock(conversation_id: int, held: threading.Event, release: threading.Event) -> None:
    try:
        with transaction.atomic():
            Conversation.objects.select_for_update().get(pk=conversation_id)
            held.set()
            release.wait(timeout=10)
    finally:
        connections.close_all()


def test_abrupt_disconnects_at_random_points_leave_nothing_behind(rubric, tmp_path: Path):
    client, engineer = ClientFactory.create(), vetted_engineer()
    conversation = conversation_between(client, engineer)
    token = api_token_create(user=client, name="ws")[1]
    prefix = f"vt-disc-{uuid.uuid4().hex[:8]}"
    env = {
        "CHANNEL_LAYER_PREFIX": prefix,
        "CHAT_MAX_CONNECTIONS_PER_USER": str(CAP),
        "CHAT_ERRORS_BEFORE_CLOSE": "2",
        "ASYNCIO_DEBUG": "true",
    }

    with asgi_server(log_dir=tmp_path, env=env) as base:
        url = base.replace("http://", "ws://") + f"/ws/conversations/{conversation.pk}/"

        class Drops(RuleBasedStateMachine):
            @rule()
            def vanish_mid_send(self) -> None:
                async def go() -> None:
                    ws = await _open(url, token)
                    await ws.send(json.dumps({"type": "send", "body": "bye", "client_msg_id": uuid.uuid4().hex}))
                    _abort(ws)

                asyncio.run(go())

            @rule()
            def vanish_mid_sync(self) -> None:
                async def go() -> None:
                    ws = await _open(url, token)
                    await ws.send(json.dumps({"type": "sync", "after": 0}))
                    _abort(ws)

                asyncio.run(go())

            @rule()
            def keep_sending_after_an_abuse_close(self) -> None:
                async def go() -> None:
                    ws = await _open(url, token)
                    for _ in range(5):  # the server closes after two error frames; the rest arrive after
                        try:
                            await ws.send("not json")
                        except websockets.ConnectionClosed:
                            break
                    _abort(ws)

                asyncio.run(go())

            @rule()
            def vanish_while_the_consumer_waits_on_a_row_lock(self) -> None:
                held, release = threading.Event(), threading.Event()
                holder = threading.Thread(target=_hold_lock, args=(conversation.pk, held, release))
                holder.start()
                held.wait(timeout=10)

                async def go() -> None:
                    ws = await _open(url, token)
                    await ws.send(json.dumps({"type": "send", "body": "stuck", "client_msg_id": uuid.uuid4().hex}))
                    await asyncio.sleep(0.2)  # the consumer is now awaiting the locked row
                    _abort(ws)

                asyncio.run(go())
                release.set()
                holder.join(timeout=10)

            @invariant()
            def nothing_left_once_the_server_has_noticed(self) -> None:
                wait_until(
                    lambda: _leftovers(prefix, client.pk, conversation.pk) == 0,
                    timeout=10,
                    what="the server to release every slot and group membership",
                )

            def teardown(self) -> None:
                async def full_cap() -> int:
                    sockets = [await _open(url, token) for _ in range(CAP)]
                    opened = len(sockets)
                    for ws in sockets:
                        await ws.close()
                    return opened

                assert asyncio.run(full_cap()) == CAP

        run_state_machine_as_test(
            Drops,
            settings=settings(
                max_examples=5,
                stateful_step_count=6,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            ),
        )
        log = (tmp_path / "server.log").read_text()

    assert "Traceback" not in log
    # asyncio's slow-callback warning: nothing blocked the event loop while sockets came and went. The
    # process's first request (the readiness probe) pays its one-time warm-up, so counting starts after it.
    after_warm_up = log.split('"WebSocket /ws/conversations/', 1)[-1]
    assert "Executing <" not in after_warm_up
