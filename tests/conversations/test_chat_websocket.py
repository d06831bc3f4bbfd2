"""The chat websocket: handshake refusals, the protocol, limits."""

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import api_token_create, api_token_revoke
from conversations.models import Message
from marketplace.asgi import application
from tests.conversations.conftest import conversation_between
from tests.factories import ClientFactory, StaffFactory, vetted_engineer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def small_limits(settings):
    settings.CHAT_RATE_BURST = 3
    settings.CHAT_RATE_PER_SECOND = 0.5
    settings.CHAT_ERRORS_BEFORE_CLOSE = 4
    settings.CHAT_MAX_CONNECTIONS_PER_USER = 2


async def setup_chat():
    client = await sync_to_async(ClientFactory.create)()
    engineer = await sync_to_async(vetted_engineer)()
    conversation = await sync_to_async(conversation_between)(client, engineer)
    return client, engineer, conversation


async def token_for(user) -> str:
    return (await sync_to_async(api_token_create)(user=user, name="ws"))[1]


async def open_chat(conversation_id: int, headers: list[tuple[bytes, bytes]]):
    socket = WebsocketCommunicator(application, f"/ws/conversations/{conversation_id}/", headers=headers)
    connected, code = await socket.connect()
    return socket, connected, code


async def join(user, conversation_id: int):
    token = await token_for(user)
    socket, connected, _ = await open_chat(conversation_id, [(b"authorization", f"Bearer {token}".encode())])
    assert connected
    return socket


async def frame(socket) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await socket.receive_from(timeout=2))
    return data


async def test_handshake_refused_without_auth_from_a_foreign_origin_and_for_non_members(rubric):
    _, _, conversation = await setup_chat()
    outsider_token = await token_for(await sync_to_async(ClientFactory.create)())

    anonymous = await open_chat(conversation.pk, [(b"origin", b"http://localhost")])
    foreign = await open_chat(
        conversation.pk, [(b"origin", b"https://evil.example"), (b"authorization", f"Bearer {outsider_token}".encode())]
    )
    outsider = await open_chat(conversation.pk, [(b"authorization", f"Bearer {outsider_token}".encode())])

    assert [connected for _, connected, _ in (anonymous, foreign, outsider)] == [False, False, False]
    assert outsider[2] == 4403
    for socket, _, _ in (anonymous, foreign, outsider):
        await socket.disconnect()


async def test_handshake_refused_with_a_revoked_token(rubric):
    client, _, conversation = await setup_chat()
    token_row, raw = await sync_to_async(api_token_create)(user=client, name="old")
    await sync_to_async(api_token_revoke)(user=client, token_id=token_row.pk)

    socket, connected, _ = await open_chat(conversation.pk, [(b"authorization", f"Bearer {raw}".encode())])

    assert connected is False
    await socket.disconnect()


async def test_send_is_acked_with_the_stored_seq_and_broadcast_to_the_other_member(rubric):
    client, engineer, conversation = await setup_chat()
    client_ws, engineer_ws = await join(client, conversation.pk), await join(engineer, conversation.pk)

    await client_ws.send_json_to({"type": "send", "body": "Hi Ada", "client_msg_id": "m-1"})

    ack = await frame(client_ws)
    echoed = await frame(client_ws)
    delivered = await frame(engineer_ws)
    assert (ack["type"], ack["seq"], ack["duplicate"]) == ("ack", 2, False)
    assert delivered == echoed
    assert (delivered["type"], delivered["message"]["body"], delivered["message"]["seq"]) == ("message", "Hi Ada", 2)
    await client_ws.send_json_to({"type": "send", "body": "Hi Ada", "client_msg_id": "m-1"})
    assert (await frame(client_ws))["duplicate"] is True
    assert await engineer_ws.receive_nothing(timeout=0.2)
    assert await sync_to_async(Message.objects.filter(conversation=conversation, kind="text").count)() == 1
    await client_ws.disconnect()
    await engineer_ws.disconnect()


async def test_typing_reaches_the_others_and_is_not_stored(rubric):
    client, engineer, conversation = await setup_chat()
    client_ws, engineer_ws = await join(client, conversation.pk), await join(engineer, conversation.pk)

    await client_ws.send_json_to({"type": "typing"})

    assert await frame(engineer_ws) == {"type": "typing", "user_id": client.pk}
    assert await client_ws.receive_nothing(timeout=0.2)
    assert await sync_to_async(Message.objects.filter(conversation=conversation).count)() == 1
    await client_ws.disconnect()
    await engineer_ws.disconnect()


async def test_sync_and_read_over_the_socket(rubric):
    client, engineer, conversation = await setup_chat()
    engineer_ws = await join(engineer, conversation.pk)
    for n in range(3):
        await engineer_ws.send_json_to({"type": "send", "body": f"m{n}"})
        await frame(engineer_ws)
        await frame(engineer_ws)
    await engineer_ws.disconnect()
    client_ws = await join(client, conversation.pk)

    await client_ws.send_json_to({"type": "sync", "after": 2})
    synced = await frame(client_ws)
    await client_ws.send_json_to({"type": "read", "up_to": 4})
    read = await frame(client_ws)

    assert [m["body"] for m in synced["messages"]] == ["m1", "m2"]
    assert synced["has_more"] is False
    assert read == {"type": "read", "up_to": 4}
    await client_ws.disconnect()


async def test_oversize_frames_and_floods_get_error_frames_then_abuse_closes(rubric, settings, small_limits):
    settings.CHAT_MAX_FRAME_BYTES = 4_096
    client, _, conversation = await setup_chat()
    socket = await join(client, conversation.pk)

    await socket.send_to(text_data=json.dumps({"type": "send", "body": "x" * 5_000}))
    for _ in range(3):
        await socket.send_json_to({"type": "typing"})
    for _ in range(3):
        await socket.send_json_to({"type": "typing"})

    codes = [(await frame(socket))["code"] for _ in range(4)]
    assert codes == ["frame_too_large", "rate_limited", "rate_limited", "rate_limited"]
    assert await socket.receive_output(timeout=2) == {"type": "websocket.close", "code": 4008}


async def test_a_user_may_hold_only_so_many_chat_connections(rubric, small_limits):
    client, _, conversation = await setup_chat()
    first, second = await join(client, conversation.pk), await join(client, conversation.pk)
    token = await token_for(client)

    third, connected, code = await open_chat(conversation.pk, [(b"authorization", f"Bearer {token}".encode())])
    await first.disconnect()
    fourth = await join(client, conversation.pk)

    assert (connected, code) == (False, 4429)
    await third.disconnect()
    await second.disconnect()
    await fourth.disconnect()


async def test_staff_connecting_is_announced_in_the_conversation(rubric):
    client, _, conversation = await setup_chat()
    client_ws = await join(client, conversation.pk)
    staff = await sync_to_async(StaffFactory.create)()

    staff_ws = await join(staff, conversation.pk)

    announced = await frame(client_ws)
    assert announced["message"]["payload"]["event"] == "staff.viewed"
    assert (await frame(staff_ws))["message"]["seq"] == announced["message"]["seq"]
    await staff_ws.send_json_to({"type": "send", "body": "hello"})
    assert (await frame(staff_ws))["code"] == "read_only"
    await client_ws.disconnect()
    await staff_ws.disconnect()
