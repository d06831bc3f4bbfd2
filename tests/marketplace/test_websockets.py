import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from accounts import services
from marketplace.asgi import application
from marketplace.notifications import notify_user
from tests.conftest import rolled_back
from tests.factories import ClientFactory, EngineerFactory

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL_ORIGIN = (b"origin", b"http://localhost:8000")
LOCAL_HOST = (b"host", b"localhost:8000")


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(*headers, path="/ws/notifications/"):
    # A browser's handshake always names the Host it was sent to.
    if not any(name == b"host" for name, _ in headers):
        headers = (*headers, LOCAL_HOST)
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await communicator.connect()
    return communicator, connected


async def test_handshake_without_authentication_is_refused():
    communicator, connected = await open_socket(LOCAL_ORIGIN)

    assert connected is False
    await communicator.disconnect()


async def test_handshake_with_session_cookie_is_accepted():
    user = await sync_to_async(ClientFactory.create)()
    cookie = await sync_to_async(session_cookie)(user)

    communicator, connected = await open_socket(LOCAL_ORIGIN, (b"cookie", cookie))

    assert connected is True
    assert await communicator.receive_json_from() == {"event": "hello", "payload": {"user_id": user.pk, "seq": 0}}
    await communicator.disconnect()


async def test_handshake_with_api_token_is_accepted_without_origin():
    user = await sync_to_async(EngineerFactory.create)()
    _, raw = await sync_to_async(services.api_token_create)(user=user, name="bot")

    communicator, connected = await open_socket((b"authorization", f"Bearer {raw}".encode()))

    assert connected is True
    assert (await communicator.receive_json_from())["payload"]["user_id"] == user.pk
    await communicator.disconnect()


async def test_handshake_from_a_foreign_origin_is_refused_even_with_a_session():
    user = await sync_to_async(ClientFactory.create)()
    cookie = await sync_to_async(session_cookie)(user)

    communicator, connected = await open_socket((b"origin", b"https://evil.example"), (b"cookie", cookie))

    assert connected is False
    await communicator.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        b"http://localhost:8001",  # the same host on another port
        b"https://localhost:8000",  # the same host and port on another scheme
        b"http://localhost.evil.example:8000",
        b"null",
        b"http://[::1",
        b"javascript:alert(1)",
    ],
)
async def test_an_origin_that_differs_in_scheme_host_or_port_is_refused(origin):
    user = await sync_to_async(ClientFactory.create)()
    cookie = await sync_to_async(session_cookie)(user)

    communicator, connected = await open_socket((b"origin", origin), (b"cookie", cookie))

    assert connected is False
    await communicator.disconnect()


@pytest.mark.parametrize(
    "path", ["/ws/nope/", "/ws/conversations/abc/", "/ws/conversations/", "/", "/ws/notifications"]
)
async def test_an_unknown_path_is_refused_at_the_handshake_not_a_server_error(path):
    user = await sync_to_async(EngineerFactory.create)()
    _, raw = await sync_to_async(services.api_token_create)(user=user, name="bot")

    communicator, connected = await open_socket((b"authorization", f"Bearer {raw}".encode()), path=path)

    assert connected is False
    await communicator.disconnect()


async def test_session_cookie_without_origin_is_refused():
    user = await sync_to_async(ClientFactory.create)()
    cookie = await sync_to_async(session_cookie)(user)

    communicator, connected = await open_socket((b"cookie", cookie))

    assert connected is False
    await communicator.disconnect()


async def test_a_revoked_token_is_refused():
    user = await sync_to_async(EngineerFactory.create)()
    token, raw = await sync_to_async(services.api_token_create)(user=user, name="bot")
    await sync_to_async(services.api_token_revoke)(user=user, token_id=token.pk)

    communicator, connected = await open_socket((b"authorization", f"Bearer {raw}".encode()))

    assert connected is False
    await communicator.disconnect()


def _notify(user_id: int) -> None:
    notify_user(user_id=user_id, event="invitation.created", payload={"request_id": 7})


def _notify_then_roll_back(user_id: int) -> None:
    with rolled_back():
        _notify(user_id)


def _notify_and_commit(user_id: int) -> None:
    with transaction.atomic():
        _notify(user_id)


async def test_notifications_reach_only_their_user_and_only_after_commit():
    alice, bob = await sync_to_async(EngineerFactory.create)(), await sync_to_async(EngineerFactory.create)()
    _, alice_raw = await sync_to_async(services.api_token_create)(user=alice, name="a")
    _, bob_raw = await sync_to_async(services.api_token_create)(user=bob, name="b")
    alice_ws, _ = await open_socket((b"authorization", f"Bearer {alice_raw}".encode()))
    bob_ws, _ = await open_socket((b"authorization", f"Bearer {bob_raw}".encode()))
    await alice_ws.receive_json_from()
    await bob_ws.receive_json_from()

    await sync_to_async(_notify_then_roll_back)(alice.pk)
    await sync_to_async(_notify_and_commit)(alice.pk)

    received = await alice_ws.receive_json_from(timeout=2)
    assert (received["event"], received["payload"]) == ("invitation.created", {"request_id": 7})
    assert await alice_ws.receive_nothing(timeout=0.2)
    assert await bob_ws.receive_nothing(timeout=0.2)
    await alice_ws.disconnect()
    await bob_ws.disconnect()
