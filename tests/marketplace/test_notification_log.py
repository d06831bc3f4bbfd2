"""The notification log: written with the change, numbered on commit, replayed exactly once after a seq."""

import asyncio
import json
import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.services import api_token_create
from marketplace.asgi import application
from marketplace.models import Notification
from marketplace.notifications import log, notify_user
from tests.conftest import forget_channel_layers, rolled_back
from tests.factories import ClientFactory, EngineerFactory, NotificationFactory, vetted_engineer
from tests.hiring_requests.conftest import request_fields
from tests.processes import asgi_server, celery_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _notify(user_id: int, n: int) -> None:
    with transaction.atomic():
        notify_user(user_id=user_id, event="test.event", payload={"n": n})


async def _socket(token: str, after: int | None = None) -> WebsocketCommunicator:
    path = "/ws/notifications/" + (f"?after={after}" if after is not None else "")
    socket = WebsocketCommunicator(application, path, headers=[(b"authorization", f"Bearer {token}".encode())])
    connected, _ = await socket.connect()
    assert connected
    hello = await socket.receive_json_from()
    assert hello["event"] == "hello"
    return socket


async def _frames(socket: WebsocketCommunicator, *, quiet: float = 0.3) -> list[dict[str, Any]]:
    frames = []
    while not await socket.receive_nothing(timeout=quiet):
        frames.append(await socket.receive_json_from())
    return frames


def test_a_rolled_back_notification_leaves_no_row_and_a_committed_one_is_numbered(client):
    user = EngineerFactory.create()
    with rolled_back():
        notify_user(user_id=user.pk, event="test.event", payload={})
    _notify(user.pk, 1)
    _notify(user.pk, 2)

    assert list(Notification.objects.filter(user=user).values_list("seq", "payload")) == [(1, {"n": 1}), (2, {"n": 2})]


def test_the_api_lists_after_a_cursor_and_marks_read_only_my_own(client):
    me, other = EngineerFactory.create(), EngineerFactory.create()
    for n in range(5):
        _notify(me.pk, n)
    _notify(other.pk, 99)
    client.force_login(me)

    first = client.get("/api/notifications?limit=2").json()
    rest = client.get(f"/api/notifications?cursor={first['next_cursor']}&limit=10").json()
    later = client.get("/api/notifications?after=4").json()
    read = client.post("/api/notifications/read", {"up_to": 3}, content_type="application/json")
    unread = client.get("/api/notifications/unread").json()

    assert [item["seq"] for item in first["items"]] == [1, 2]
    assert first["has_more"] is True
    assert [item["payload"]["n"] for item in rest["items"]] == [2, 3, 4]
    assert rest["has_more"] is False
    assert rest["next_cursor"] is None
    assert [item["seq"] for item in later["items"]] == [5]
    assert read.json() == {"up_to": 3, "unread": 2}
    assert unread == {"unread": 2}
    assert Notification.objects.get(user=other).read_at is None  # another user's stays as it was


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("after=-1", None),
        ("after=99999999999999999999", None),
        ("limit=0", None),
        ("limit=101", None),
        ("after=abc", None),
        (None, {"up_to": -1}),
        (None, {"up_to": "3"}),
        (None, {"up_to": 1, "extra": 1}),
        (None, {"up_to": 2**63}),
    ],
)
def test_bad_cursors_get_a_422_and_change_nothing(client, query, body):
    me = EngineerFactory.create()
    _notify(me.pk, 1)
    client.force_login(me)

    if body is None:
        response = client.get(f"/api/notifications?{query}")
    else:
        response = client.post("/api/notifications/read", body, content_type="application/json")

    assert response.status_code == 422
    assert "code" in response.json()
    assert Notification.objects.get(user=me).read_at is None


def test_a_notification_whose_publish_was_lost_is_numbered_by_the_sweep():
    user = EngineerFactory.create()
    # Written and committed, but the process died before its on-commit publish ran.
    NotificationFactory.create(user=user, created_at=timezone.now() - timedelta(seconds=30))
    fresh = NotificationFactory.create(user=user)

    numbered = log.sweep_unnumbered()

    assert numbered == 2  # the user's waiting rows are numbered together, oldest first
    assert list(Notification.objects.filter(user=user).order_by("seq").values_list("seq", flat=True)) == [1, 2]
    assert Notification.objects.get(pk=fresh.pk).seq == 2


def test_old_notifications_are_pruned_and_recent_ones_kept():
    user = EngineerFactory.create()
    _notify(user.pk, 1)
    _notify(user.pk, 2)
    Notification.objects.filter(payload__n=1).update(created_at=timezone.now() - timedelta(days=31))

    assert log.prune(older_than=timedelta(days=30)) == 1
    assert list(Notification.objects.filter(user=user).values_list("seq", flat=True)) == [2]


async def test_a_client_that_reconnects_with_its_last_seq_gets_what_it_missed_in_order():
    user = await sync_to_async(EngineerFactory.create)()
    _, token = await sync_to_async(api_token_create)(user=user, name="ws")
    socket = await _socket(token)
    await sync_to_async(_notify)(user.pk, 1)
    seen = await _frames(socket)
    await socket.disconnect()

    for n in (2, 3, 4):  # while the client is away
        await sync_to_async(_notify)(user.pk, n)
    again = await _socket(token, after=seen[-1]["seq"])
    await sync_to_async(_notify)(user.pk, 5)
    replayed = await _frames(again)
    await again.disconnect()

    assert [f["payload"]["n"] for f in seen] == [1]
    # Seq 1 is the token's own notification (api_token.created), sent before the socket opened.
    assert [(f["seq"], f["payload"]["n"]) for f in replayed] == [(3, 2), (4, 3), (5, 4), (6, 5)]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drops=st.lists(st.integers(0, 29), min_size=1, max_size=4, unique=True))
def test_replay_property_each_notification_exactly_once_in_order_across_drops(drops):
    """While a writer keeps notifying, the client drops at random points and reconnects with its last seq."""
    user = EngineerFactory.create()
    _, token = api_token_create(user=user, name="ws")
    total = 30 + 1  # the writer's 30, after the token's own notification (api_token.created, seq 1)

    async def scenario() -> list[int]:
        received: list[int] = []
        writer_done = threading.Event()

        def writer() -> None:
            try:
                for n in range(total - 1):
                    _notify(user.pk, n)
            finally:
                connections.close_all()
                writer_done.set()

        socket = await _socket(token, after=0)
        writing = asyncio.create_task(asyncio.to_thread(writer))
        index = 0
        while True:
            if index in drops:
                await socket.disconnect()  # abrupt: whatever was in flight is lost with the socket
                socket = await _socket(token, after=received[-1] if received else 0)
                drops.remove(index)
            if await socket.receive_nothing(timeout=0.5):
                if writer_done.is_set() and len(received) >= total:
                    break
                if writer_done.is_set():
                    await socket.disconnect()  # nothing more is coming on this socket: ask again
                    socket = await _socket(token, after=received[-1] if received else 0)
                continue
            frame = await socket.receive_json_from()
            received.append(frame["seq"])
            index += 1
        await writing
        await socket.disconnect()
        return received

    drops = list(drops)
    forget_channel_layers()  # this example's loop is new; the last example's layer is bound to its own
    received = asyncio.run(asyncio.wait_for(scenario(), timeout=90))

    assert received == list(range(1, total + 1))


@pytest.mark.live
def test_on_the_embedded_default_a_worker_made_notification_reaches_an_open_socket(rubric, tmp_path):
    """No Redis anywhere: the in-memory channel layer is per process, so the socket reads the log."""
    engineer = vetted_engineer()
    client_user = ClientFactory.create()
    _, engineer_token = api_token_create(user=engineer, name="ws")
    _, client_token = api_token_create(user=client_user, name="http")
    queue = f"embedded-{uuid.uuid4().hex[:8]}"
    embedded = {"REDIS_URL": "", "CELERY_BROKER_URL": "", "VETTED_VAR_DIR": str(tmp_path), "CELERY_QUEUE": queue}

    with (
        celery_worker(queue=queue, log_dir=tmp_path, env=embedded),
        asgi_server(log_dir=tmp_path, env=embedded) as base,
    ):

        async def wait_for_invitation() -> tuple[dict[str, Any], float]:
            url = base.replace("http://", "ws://") + "/ws/notifications/"
            async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {engineer_token}"}) as ws:
                assert json.loads(await ws.recv())["event"] == "hello"
                headers = {"Authorization": f"Bearer {client_token}"}
                async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
                    draft = (await http.post("/api/requests", json=request_fields(start_date="2099-01-01"))).json()
                    raised = await http.post(f"/api/requests/{draft['id']}/raise")
                    assert raised.status_code == 200
                raised_at = asyncio.get_running_loop().time()
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
                    if frame["event"] == "invitation.created":
                        return frame, asyncio.get_running_loop().time() - raised_at

        frame, elapsed = asyncio.run(wait_for_invitation())

    assert frame["payload"]["title"] == "Async payments service"
    assert frame["seq"] >= 1
    # Generous: the worker picks the task off the filesystem broker, then the socket's next poll (1 s) reads it.
    assert elapsed < 20
