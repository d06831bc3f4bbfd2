"""What each actor is told on /ws/notifications/ as a request moves."""

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts.services import api_token_create
from hiring_requests import services
from hiring_requests.models import HiringRequest
from marketplace.asgi import application
from tests.factories import ClientFactory, StaffFactory, vetted_engineer
from tests.hiring_requests.conftest import enable_payouts, raised

pytestmark = pytest.mark.django_db(transaction=True)


async def listen(user) -> WebsocketCommunicator:
    _, token = await sync_to_async(api_token_create)(user=user, name="ws")
    socket = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["event"] == "hello"
    return socket


async def events_of(socket: WebsocketCommunicator) -> list[tuple[str, dict[str, Any]]]:
    received = []
    while not await socket.receive_nothing(timeout=0.2):
        frame = await socket.receive_json_from()
        received.append((frame["event"], frame["payload"]))
    return received


def run_to_hire(client, chosen, other):
    request = raised(client)
    services.matching_run(request_id=request.pk)
    for engineer in (chosen, other):
        services.invitation_accept(engineer=engineer, invitation_id=request.invitations.get(engineer=engineer).pk)
    enable_payouts(chosen)
    services.request_hire(client=client, request_id=request.pk, engineer_id=chosen.pk)
    return request


async def test_invitations_shortlist_and_hire_reach_the_right_people(rubric):
    client = await sync_to_async(ClientFactory.create)()
    chosen = await sync_to_async(vetted_engineer)(score_bp=9_000)
    other = await sync_to_async(vetted_engineer)(score_bp=8_000)
    sockets = {name: await listen(user) for name, user in {"client": client, "chosen": chosen, "other": other}.items()}

    request = await sync_to_async(run_to_hire)(client, chosen, other)

    client_events = await events_of(sockets["client"])
    chosen_events = [event for event, _ in await events_of(sockets["chosen"])]
    other_events = [event for event, _ in await events_of(sockets["other"])]
    assert [event for event, _ in client_events] == ["shortlist.changed", "shortlist.changed"]
    assert [e["engineer_id"] for e in client_events[-1][1]["shortlist"]] == [chosen.pk, other.pk]
    assert chosen_events == ["invitation.created", "engagement.created"]
    assert other_events == ["invitation.created", "request.filled"]
    assert client_events[0][1]["request_id"] == request.pk
    for socket in sockets.values():
        await socket.disconnect()


def raise_then_sweep_past_deadline(client):
    # The deadline is moved, not the clock: the in-memory channel layer expires messages by wall time.
    request = raised(client)
    deadline = timezone.now() - timedelta(minutes=1)
    HiringRequest.objects.filter(pk=request.pk).update(match_deadline=deadline)
    services.clock_sweep()
    return HiringRequest.objects.get(pk=request.pk)


async def test_staff_are_warned_and_told_of_the_breach_and_the_client_of_the_breach(rubric):
    client, staff = await sync_to_async(ClientFactory.create)(), await sync_to_async(StaffFactory.create)()
    client_socket, staff_socket = await listen(client), await listen(staff)

    request = await sync_to_async(raise_then_sweep_past_deadline)(client)

    # Nobody matches (no engineers exist): staff hear at once, then of the risk and the breach.
    assert [e for e, _ in await events_of(staff_socket)] == [
        "request.pool_empty",
        "request.at_risk",
        "request.deadline_breached",
    ]
    assert await events_of(client_socket) == [
        ("request.pool_empty", {"request_id": request.pk, "title": request.title, "widening_step": 0}),
        (
            "request.deadline_breached",
            {"request_id": request.pk, "title": request.title, "deadline": request.match_deadline.isoformat()},
        ),
    ]
    await client_socket.disconnect()
    await staff_socket.disconnect()
