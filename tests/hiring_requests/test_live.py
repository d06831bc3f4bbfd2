"""The real path: an HTTP raise, the Celery worker's wave, the invitation on the engineer's websocket."""

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
import websockets

from accounts import services as accounts_services
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import request_fields
from tests.processes import asgi_server, celery_worker, needs_redis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("the worker reaches the server's websockets only through a shared channel layer"),
]


async def first_invitation(url: str, token: str, request_id_box: dict[str, int], raise_request) -> dict[str, Any]:
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        hello = json.loads(await socket.recv())
        assert hello["event"] == "hello"
        request_id_box["id"] = await asyncio.to_thread(raise_request)
        while True:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
            if frame["event"] == "invitation.created":
                return frame


def test_the_worker_pushes_the_invitation_over_a_real_websocket(rubric, tmp_path):
    engineer = vetted_engineer()
    client_user = ClientFactory.create()
    _, engineer_token = accounts_services.api_token_create(user=engineer, name="ws")
    _, client_token = accounts_services.api_token_create(user=client_user, name="http")
    queue = f"live-{uuid.uuid4().hex[:8]}"

    with (
        celery_worker(queue=queue, log_dir=tmp_path),
        asgi_server(log_dir=tmp_path, env={"CELERY_QUEUE": queue}) as base,
    ):

        def raise_request() -> int:
            headers = {"Authorization": f"Bearer {client_token}"}
            draft = httpx.post(f"{base}/api/requests", json=request_fields(start_date="2099-01-01"), headers=headers)
            request_id = draft.json()["id"]
            raised = httpx.post(f"{base}/api/requests/{request_id}/raise", headers=headers)
            assert raised.status_code == 200
            return int(request_id)

        box: dict[str, int] = {}
        ws_url = base.replace("http://", "ws://") + "/ws/notifications/"
        frame = asyncio.run(first_invitation(ws_url, engineer_token, box, raise_request))

    assert frame["payload"]["request_id"] == box["id"]
    assert frame["payload"]["title"] == "Async payments service"
