"""Two server processes on Redis: a message sent to one arrives on the other."""

import asyncio
import json
from typing import Any

import pytest
import websockets

from accounts.services import api_token_create
from tests.conversations.conftest import conversation_between
from tests.factories import ClientFactory, vetted_engineer
from tests.processes import asgi_server, needs_redis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("two server processes share chat only through the Redis channel layer"),
]


async def converse(url_a: str, url_b: str, client_token: str, engineer_token: str) -> tuple[Any, Any]:
    async with (
        websockets.connect(url_a, additional_headers={"Authorization": f"Bearer {client_token}"}) as client_ws,
        websockets.connect(url_b, additional_headers={"Authorization": f"Bearer {engineer_token}"}) as engineer_ws,
    ):
        await client_ws.send(json.dumps({"type": "send", "body": "Across processes", "client_msg_id": "x-1"}))
        ack = json.loads(await asyncio.wait_for(client_ws.recv(), timeout=10))
        delivered = json.loads(await asyncio.wait_for(engineer_ws.recv(), timeout=10))
        return ack, delivered


def test_a_message_sent_to_one_server_arrives_on_the_other(rubric, tmp_path):
    client, engineer = ClientFactory.create(), vetted_engineer()
    conversation = conversation_between(client, engineer)
    client_token = api_token_create(user=client, name="a")[1]
    engineer_token = api_token_create(user=engineer, name="b")[1]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    with asgi_server(log_dir=tmp_path / "a") as server_a, asgi_server(log_dir=tmp_path / "b") as server_b:
        path = f"/ws/conversations/{conversation.pk}/"
        ack, delivered = asyncio.run(
            converse(
                server_a.replace("http", "ws") + path,
                server_b.replace("http", "ws") + path,
                client_token,
                engineer_token,
            )
        )

    assert (ack["type"], ack["seq"]) == ("ack", 2)
    assert delivered["type"] == "message"
    assert (delivered["message"]["body"], delivered["message"]["sender_id"]) == ("Across processes", client.pk)
