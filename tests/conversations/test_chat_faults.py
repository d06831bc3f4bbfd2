"""Chat sockets under faults: bad text, rolled-back messages, ended credentials, a row lock on another conversation."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, transaction

from accounts.services import api_token_create, api_token_revoke
from conversations import services
from conversations.models import Conversation, Message
from marketplace import realtime
from tests.conftest import rolled_back
from tests.conversations.test_chat_websocket import frame, join, open_chat, setup_chat
from tests.marketplace.test_realtime import closed_with

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("body", ["a\x00b", "\ud800", "ok"])
async def test_nul_and_lone_surrogates_get_an_error_frame_and_the_socket_lives_on(rubric, body):
    client, _, conversation = await setup_chat()
    socket = await join(client, conversation.pk)
    count = sync_to_async(Message.objects.filter(conversation=conversation).count)
    before = await count()

    await socket.send_json_to({"type": "send", "body": body, "client_msg_id": "c1"})
    answers = [await frame(socket)]
    while not await socket.receive_nothing(timeout=0.3):
        answers.append(await frame(socket))
    # A good message is acked, then broadcast to every member (the sender included).
    answer = next(a for a in answers if a["type"] != "message")

    stored = await count() - before
    if body == "ok":
        assert (answer["type"], stored) == ("ack", 1)
    else:
        assert (answer["type"], answer["code"], stored) == ("error", "invalid_message", 0)
    await socket.send_json_to({"type": "sync", "after": 0})
    assert (await frame(socket))["type"] == "sync"  # still answering
    await socket.disconnect()


async def test_a_message_whose_transaction_rolls_back_is_never_broadcast(rubric):
    client, engineer, conversation = await setup_chat()
    listener = await join(engineer, conversation.pk)
    count = sync_to_async(Message.objects.filter(conversation=conversation).count)
    before = await count()

    def send_then_roll_back() -> None:
        with rolled_back():
            services.message_send(sender=client, conversation_id=conversation.pk, body="never", client_msg_id=None)

    await sync_to_async(send_then_roll_back)()

    assert await listener.receive_nothing(timeout=0.5)
    assert await count() == before
    await listener.disconnect()


async def test_revoking_the_token_closes_its_chat_socket(rubric):
    client, _, conversation = await setup_chat()
    token, raw = await sync_to_async(api_token_create)(user=client, name="chat")
    socket, connected, _ = await open_chat(conversation.pk, [(b"authorization", f"Bearer {raw}".encode())])
    assert connected

    await sync_to_async(api_token_revoke)(user=client, token_id=token.pk)

    assert await closed_with(socket) == realtime.CLOSE_CREDENTIALS_ENDED


async def test_staff_who_lose_the_staff_flag_lose_their_open_reading_socket(rubric):
    from tests.factories import StaffFactory

    _, _, conversation = await setup_chat()
    staff = await sync_to_async(StaffFactory.create)()
    socket = await join(staff, conversation.pk)
    await socket.receive_nothing(timeout=0.3)  # the "staff viewed" announcement, if any

    staff.is_staff, staff.role = False, "client"  # a user is staff or has a role
    await sync_to_async(staff.save)()

    assert await closed_with(socket) == realtime.CLOSE_NOT_MEMBER


def _hold_row_lock(conversation_id: int, held: threading.Event, release: threading.Event) -> None:
    try:
        with transaction.atomic():
            Conversation.objects.select_for_update().get(pk=conversation_id)
            held.set()
            release.wait(timeout=20)
    finally:
        connections.close_all()


async def test_a_row_lock_on_one_conversation_does_not_delay_another_or_new_handshakes(rubric):
    locked_client, _, locked = await setup_chat()
    free_client, _, free = await setup_chat()
    stuck = await join(locked_client, locked.pk)
    bystander = await join(free_client, free.pk)
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_row_lock, args=(locked.pk, held, release))
    holder.start()
    await asyncio.to_thread(held.wait, 10)

    # The stuck member's send waits on the lock (until the database's lock timeout answers it).
    await stuck.send_json_to({"type": "send", "body": "behind the lock", "client_msg_id": "s1"})
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await bystander.send_json_to({"type": "sync", "after": 0})
    synced = await frame(bystander)
    newcomer = await join(free_client, free.pk)
    bystander_seconds = time.monotonic() - started
    release.set()
    await asyncio.to_thread(holder.join, 10)
    stuck_answer = await frame(stuck)

    assert synced["type"] == "sync"
    assert bystander_seconds < 1.5  # generous: the lock is held for as long as the stuck call waits
    assert stuck_answer["type"] in {"ack", "error"}  # acked once the lock went, or refused by the lock timeout
    for socket in (stuck, bystander, newcomer):
        await socket.disconnect()
