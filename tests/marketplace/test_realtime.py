"""Websocket lifetimes: credentials that end close their sockets, cleanup always runs, garbage gets an error frame."""

import asyncio
import os

import pytest
import redis.asyncio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts.models import User
from accounts.services import api_token_create, api_token_revoke
from marketplace import realtime
from marketplace.asgi import application
from tests.factories import ClientFactory, EngineerFactory, NotificationStreamFactory
from tests.processes import needs_redis

pytestmark = pytest.mark.django_db(transaction=True)


async def token_socket(user, name="ws"):
    token, raw = await sync_to_async(api_token_create)(user=user, name=name)
    socket = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[(b"authorization", f"Bearer {raw}".encode())]
    )
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["event"] == "hello"
    return token, socket


def session_cookie(user) -> tuple[Client, bytes]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


async def session_socket(cookie: bytes) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost:8000"), (b"host", b"localhost:8000"), (b"cookie", cookie)]
    socket = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["event"] == "hello"
    return socket


async def closed_with(socket: WebsocketCommunicator, within: float = 1.0) -> int | None:
    """The close code the server sent within `within` seconds (None if the socket stayed open)."""
    while not await socket.receive_nothing(timeout=within):  # receive_nothing never cancels the consumer
        output = await socket.receive_output()
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))
    return None


async def test_revoking_a_token_closes_its_sockets_within_a_second_and_only_its_own():
    user = await sync_to_async(EngineerFactory.create)()
    revoked, revoked_socket = await token_socket(user, "laptop")
    _, other_socket = await token_socket(user, "phone")

    await sync_to_async(api_token_revoke)(user=user, token_id=revoked.pk)

    assert await closed_with(revoked_socket) == realtime.CLOSE_CREDENTIALS_ENDED
    assert await closed_with(other_socket, within=0.3) is None  # the other token's socket stays open
    await other_socket.disconnect()


async def test_logging_out_closes_that_sessions_sockets():
    user = await sync_to_async(ClientFactory.create)()
    client, cookie = await sync_to_async(session_cookie)(user)
    socket = await session_socket(cookie)
    _, token_socket_open = await token_socket(user)

    response = await sync_to_async(client.post)("/api/auth/logout")

    assert response.status_code == 204
    assert await closed_with(socket) == realtime.CLOSE_CREDENTIALS_ENDED
    assert await closed_with(token_socket_open, within=0.3) is None
    await token_socket_open.disconnect()


async def test_deactivating_a_user_closes_every_socket_of_theirs():
    user = await sync_to_async(EngineerFactory.create)()
    _, first = await token_socket(user, "a")
    _, second = await token_socket(user, "b")

    user.is_active = False
    await sync_to_async(user.save)(update_fields=["is_active"])

    assert await closed_with(first) == realtime.CLOSE_CREDENTIALS_ENDED
    assert await closed_with(second) == realtime.CLOSE_CREDENTIALS_ENDED


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"type": "sync", "after": "x"}',
        '{"type": "nope"}',
        '{"type": "sync", "after": -1}',
        '{"type": "sync", "after": true}',
        '{"type": "sync\\u0000", "after": 1}',
        "\x00",
        "x" * 20_000,
    ],
)
async def test_garbage_gets_an_error_frame_and_the_socket_keeps_working(frame):
    user = await sync_to_async(EngineerFactory.create)()
    _, socket = await token_socket(user)

    await socket.send_to(text_data=frame)
    error = await socket.receive_json_from()
    await socket.send_json_to({"type": "sync", "after": 0})

    assert error["type"] == "error"
    assert error["code"] in {"invalid_json", "invalid_frame", "frame_too_large"}
    assert await closed_with(socket, within=0.3) is None
    await socket.disconnect()


async def test_a_binary_frame_gets_an_error_frame_not_a_crash():
    user = await sync_to_async(EngineerFactory.create)()
    _, socket = await token_socket(user)

    await socket.send_to(bytes_data=b"\xff\xfe\x00")

    assert (await socket.receive_json_from())["code"] == "invalid_json"
    await socket.disconnect()


@needs_redis("slots and group memberships live in Redis")
async def test_after_sockets_close_no_slot_or_group_membership_is_left():
    user = await sync_to_async(EngineerFactory.create)()
    sockets = [(await token_socket(user, f"t{i}"))[1] for i in range(3)]
    assert await realtime.slots_in_use("notifications", user.pk) == 3

    for socket in sockets:
        await socket.disconnect()  # returns once the consumer has finished, its cleanup included

    client = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"])
    prefix = settings.CHANNEL_LAYER_PREFIX
    members = await client.zcard(f"{prefix}:group:user.{user.pk}") + await client.zcard(
        f"{prefix}:group:control.{user.pk}"
    )
    await client.aclose()
    assert members == 0
    assert await realtime.slots_in_use("notifications", user.pk) == 0


async def test_the_cap_refuses_one_socket_too_many_and_a_closed_one_gives_its_slot_back(settings):
    settings.NOTIFICATIONS_MAX_CONNECTIONS_PER_USER = 2
    user = await sync_to_async(EngineerFactory.create)()
    _, first = await token_socket(user, "a")
    _, second = await token_socket(user, "b")
    _, raw = await sync_to_async(api_token_create)(user=user, name="c")
    headers = [(b"authorization", f"Bearer {raw}".encode())]

    third = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    refused, code = await third.connect()
    await first.disconnect()  # returns once the consumer has finished and given its slot back
    fourth = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    accepted, _ = await fourth.connect()

    assert (refused, code) == (False, realtime.CLOSE_TOO_MANY)
    assert accepted is True
    await second.disconnect()
    await fourth.disconnect()


async def test_a_send_after_close_is_dropped_not_raised():
    user = await sync_to_async(EngineerFactory.create)()
    _, socket = await token_socket(user)
    layer = get_channel_layer()

    await socket.disconnect()
    # A push addressed to the user after the socket went: nothing is listening, nothing breaks.
    await layer.group_send(f"user.{user.pk}", {"type": "notify", "seq": 1, "event": "x", "payload": {}, "sent_at": ""})

    assert await realtime.slots_in_use("notifications", user.pk) == 0


@needs_redis("slots live in Redis")
async def test_live_sockets_keep_their_slots_past_the_ttl_and_the_cap_still_holds(settings):
    settings.WEBSOCKET_SLOT_TTL_SECONDS = 1
    settings.WEBSOCKET_HEARTBEAT_SECONDS = 0.2
    settings.NOTIFICATIONS_MAX_CONNECTIONS_PER_USER = 2
    user = await sync_to_async(EngineerFactory.create)()
    _, first = await token_socket(user, "a")
    _, second = await token_socket(user, "b")

    await asyncio.sleep(3)  # three TTLs: only the heartbeats keep the slots (and their key) alive
    _, raw = await sync_to_async(api_token_create)(user=user, name="c")
    third = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[(b"authorization", f"Bearer {raw}".encode())]
    )
    refused, code = await third.connect()

    assert await realtime.slots_in_use("notifications", user.pk) == 2
    assert (refused, code) == (False, realtime.CLOSE_TOO_MANY)
    await first.disconnect()
    await second.disconnect()


def _many_notifications(user: User, count: int) -> None:
    from marketplace.models import Notification

    Notification.objects.bulk_create(
        Notification(user_id=user.pk, seq=n, event="test.event", payload={"n": n}) for n in range(1, count + 1)
    )
    NotificationStreamFactory.create(user=user, last_seq=count)


async def test_revoking_a_token_stops_a_long_replay_at_once():
    user = await sync_to_async(EngineerFactory.create)()
    await sync_to_async(_many_notifications)(user, 3_000)
    token, raw = await sync_to_async(api_token_create)(user=user, name="replaying")
    socket = WebsocketCommunicator(
        application, "/ws/notifications/?after=0", headers=[(b"authorization", f"Bearer {raw}".encode())]
    )
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from())["event"] == "hello"
    for _ in range(20):
        await socket.receive_json_from()

    await sync_to_async(api_token_revoke)(user=user, token_id=token.pk)
    frames, code = 20, None
    while code is None:
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            code = output["code"]
        else:
            frames += 1

    assert code == realtime.CLOSE_CREDENTIALS_ENDED
    assert frames < 3_000  # the replay stopped; it did not run to the end first


async def test_deleting_a_token_closes_its_sockets():
    user = await sync_to_async(EngineerFactory.create)()
    token, socket = await token_socket(user)

    await sync_to_async(token.delete)()

    assert await closed_with(socket) == realtime.CLOSE_CREDENTIALS_ENDED


@pytest.mark.parametrize("after", ["%C2%B2", "%E2%91%A0", "%D9%A5", "-1", "1e9", "5.0", "99999999999999999999"])
async def test_an_after_that_is_not_ascii_digits_starts_now_without_an_error(after):
    user = await sync_to_async(EngineerFactory.create)()
    _, raw = await sync_to_async(api_token_create)(user=user, name="ws")
    socket = WebsocketCommunicator(
        application, f"/ws/notifications/?after={after}", headers=[(b"authorization", f"Bearer {raw}".encode())]
    )

    connected, _ = await socket.connect()
    hello = await socket.receive_json_from()

    assert connected is True
    assert hello["event"] == "hello"
    assert await closed_with(socket, within=0.3) is None
    await socket.disconnect()


def _notify(user_id: int, n: int) -> None:
    from marketplace.notifications import notify_user

    notify_user(user_id=user_id, event="test.event", payload={"n": n})


async def test_a_sync_past_the_newest_seq_is_clamped_and_acknowledged_and_the_stream_goes_on():
    user = await sync_to_async(EngineerFactory.create)()
    _, socket = await token_socket(user)

    await socket.send_json_to({"type": "sync", "after": 1_000_000})
    synced = await socket.receive_json_from()
    await sync_to_async(_notify)(user.pk, 1)
    pushed = await socket.receive_json_from(timeout=2)

    # Seq 1 is the token's own notification (api_token.created).
    assert synced == {"event": "synced", "payload": {"seq": 1}}
    assert (pushed["seq"], pushed["payload"]) == (2, {"n": 1})
    await socket.disconnect()


@needs_redis("the receive buffer is channels-redis's")
async def test_sockets_that_come_and_go_leave_nothing_in_the_layers_receive_buffer():
    user = await sync_to_async(EngineerFactory.create)()
    layer = get_channel_layer()
    before = set(layer.receive_buffer)

    for i in range(20):
        _, socket = await token_socket(user, f"t{i}")
        await socket.disconnect()

    assert set(layer.receive_buffer) - before == set()


@needs_redis("the receive buffer is channels-redis's")
async def test_a_message_still_on_its_way_to_a_closed_socket_is_dropped_not_kept(monkeypatch):
    user = await sync_to_async(EngineerFactory.create)()
    layer = get_channel_layer()
    _, reader = await token_socket(user, "reader")  # stays open: its receive reads Redis for the process
    _, closing = await token_socket(user, "closing")
    leave, channels = realtime.leave_group, []

    async def note_channel_then_leave(layer, group, channel):
        channels.append(channel)
        await leave(layer, group, channel)

    monkeypatch.setattr(realtime, "leave_group", note_channel_then_leave)
    await closing.disconnect()
    await layer.send(channels[0], {"type": "access.changed"})  # was on its way when the socket closed
    # Next after the two tokens' own notifications (seqs 1 and 2), which the socket is sent first.
    await layer.group_send(f"user.{user.pk}", {"type": "notify", "seq": 3, "event": "x", "payload": {}, "sent_at": ""})

    events: list[str] = []
    while "x" not in events and len(events) < 5:  # the tokens' own notifications may come first
        events.append((await reader.receive_json_from())["event"])
    assert events[-1] == "x"  # the reader has read past the closed socket's message
    assert channels[0] not in layer.receive_buffer
    await reader.disconnect()
