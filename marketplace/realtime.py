"""What every websocket consumer shares: its lifetime, its slot, its database calls, its credentials.

`RealtimeConsumer` is the base of the chat and notification consumers:

- **Cleanup always runs.** The consumer's whole life is inside try/finally: whatever
  ends it (a close frame, a client that vanished mid-await, an exception in a
  handler, server shutdown cancelling the task), its groups are left and its slot
  is given back. A send after the socket closed is dropped, not raised.
- **Slots, not counters.** The per-user connection cap counts one entry per open
  socket with an expiry (a Redis sorted set scored by expiry time, or a dict in the
  embedded default). A live socket refreshes its entry every
  WEBSOCKET_HEARTBEAT_SECONDS; a crashed process's entries lapse after
  WEBSOCKET_SLOT_TTL_SECONDS. The heartbeat also re-joins the socket's groups, so
  the channel layer's group expiry can be short: a killed process's memberships go
  after WEBSOCKET_GROUP_EXPIRY_SECONDS.
- **Isolation.** Database calls go through `ws_db`: a bounded thread pool of their
  own, with the connection handed back around each call, instead of the one thread
  every thread-sensitive call in the process shares. A socket stuck behind a row
  lock holds one of those threads; the other sockets and new handshakes carry on.
- **Credentials end sockets.** Revoking a token, logging out or deactivating a user
  closes the sockets that rest on them (close code 4401) through a per-user
  control group, within a second.

Close codes (docs/chat.md): 4401 credentials ended, 4403 not a member, 4404 no such
path, 4429 too many connections, 4008 repeated abuse, 1011 server error, 1013 try
again later (the channel layer or Redis is unavailable).
"""

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from asgiref.sync import async_to_sync, sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections, transaction

from marketplace import metrics, shutdown
from marketplace.channel_layer import RedisChannelLayer
from marketplace.resilience import is_outage

logger = logging.getLogger(__name__)

CLOSE_CREDENTIALS_ENDED = 4401
CLOSE_NOT_MEMBER = 4403
CLOSE_NO_ROUTE = 4404
CLOSE_TOO_MANY = 4429
CLOSE_ABUSE = 4008
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013


@functools.cache
def _ws_executor(pool: str) -> ThreadPoolExecutor:
    threads = settings.WEBSOCKET_DB_THREADS if pool == "frames" else max(2, settings.WEBSOCKET_DB_THREADS // 2)
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"ws-db-{pool}")


def ws_db(func: Callable[..., Any], *, pool: str = "frames") -> Callable[..., Any]:
    """`func` to await from a consumer: run on a websocket thread pool, its database connection handed back after.

    Closing after each call returns the connection to Django's pool, so a pool thread
    never sits on a connection between two frames. Handshakes (`pool="handshake"`)
    have threads of their own, so frames stuck behind a row lock cannot hold up new
    connections.
    """

    def call_and_hand_back(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    executor = _ws_executor(pool)
    wrapped: Callable[..., Any] = sync_to_async(call_and_hand_back, thread_sensitive=False, executor=executor)
    return wrapped


# --- who is connected: slots with an expiry -------------------------------------------

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
_redis_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()
_local_slots: dict[str, dict[str, float]] = {}


def slot_key(kind: str, user_id: int) -> str:
    return f"{settings.CHANNEL_LAYER_PREFIX}:slots:{kind}:{user_id}"


def _redis() -> Any:
    """One client per event loop (redis.asyncio connections belong to the loop that opened them)."""
    import redis.asyncio

    loop = asyncio.get_running_loop()
    client = _redis_clients.get(loop)
    if client is None:
        # A blocking pool: a burst of handshakes waits its turn for a connection instead of failing.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            str(settings.REDIS_URL), max_connections=50, timeout=5, socket_timeout=5, socket_connect_timeout=2
        )
        client = redis.asyncio.Redis(connection_pool=pool)
        _redis_clients[loop] = client
    return client


async def slot_acquire(kind: str, user_id: int, channel: str, *, cap: int) -> bool:
    """Take one of the user's `cap` slots of `kind` for `channel`; False when all are taken.

    Raises what redis raises when Redis is unreachable (the consumer closes with 1013).
    """
    now, ttl = time.time(), settings.WEBSOCKET_SLOT_TTL_SECONDS
    key = slot_key(kind, user_id)
    if not settings.REDIS_URL:
        slots = {c: t for c, t in _local_slots.get(key, {}).items() if t > now}
        if len(slots) >= cap:
            _local_slots[key] = slots
            return False
        slots[channel] = now + ttl
        _local_slots[key] = slots
        return True
    taken = await _redis().eval(_ACQUIRE, 1, key, channel, now, now + ttl, cap, ttl * 2)
    return bool(taken)


async def slot_refresh(kind: str, user_id: int, channel: str) -> None:
    """Keep the socket's slot: re-add it with a new expiry and renew the key's own expiry (both at once)."""
    ttl, key = settings.WEBSOCKET_SLOT_TTL_SECONDS, slot_key(kind, user_id)
    expires = time.time() + ttl
    if not settings.REDIS_URL:
        _local_slots.setdefault(key, {})[channel] = expires
        return
    async with _redis().pipeline(transaction=True) as pipe:
        await pipe.zadd(key, {channel: expires}).expire(key, ttl * 2).execute()


async def slot_release(kind: str, user_id: int, channel: str) -> None:
    key = slot_key(kind, user_id)
    if not settings.REDIS_URL:
        _local_slots.get(key, {}).pop(channel, None)
        return
    await _redis().zrem(key, channel)


async def slots_in_use(kind: str, user_id: int) -> int:
    """How many live slots of `kind` the user holds (expired ones not counted)."""
    key, now = slot_key(kind, user_id), time.time()
    if not settings.REDIS_URL:
        return sum(1 for t in _local_slots.get(key, {}).values() if t > now)
    return int(await _redis().zcount(key, now, "+inf"))


# --- credentials ending ---------------------------------------------------------------


def control_group(user_id: int) -> str:
    """Every open socket of the user listens here for the end of its credentials."""
    return f"control.{user_id}"


def credentials_ended(*, user_id: int, token_id: int | None = None, session_key: str | None = None) -> None:
    """Close the user's sockets that rest on a credential that just ended, after the transaction commits.

    token_id: sockets opened with that API token; session_key: sockets opened with that
    session; neither: every socket of the user (deactivation). Never raises: a layer
    outage is logged (and sockets cannot then receive anything either).
    """
    _control_send(user_id, {"type": "credentials.ended", "token_id": token_id, "session_key": session_key})


def _control_send(user_id: int, message: dict[str, Any]) -> None:
    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(control_group(user_id), message)
        except Exception as exc:
            logger.warning("websocket.control_send_failed", extra={"user_id": user_id, "error": repr(exc)})

    transaction.on_commit(send, robust=True)


def credential_current(scope: dict[str, Any]) -> bool:
    """Whether a socket's credential still holds: the user active, the token live, the session present."""
    from django.contrib.sessions.models import Session

    from accounts.models import ApiToken, User

    user_id = scope["user"].pk
    if not User.objects.filter(pk=user_id, is_active=True).exists():
        return False
    if scope.get("auth_token_id") is not None:
        return ApiToken.objects.filter(pk=scope["auth_token_id"], revoked_at=None).exists()
    if scope.get("auth_session_key") is not None:
        return Session.objects.filter(session_key=scope["auth_session_key"]).exists()
    return True


def on_token_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    credentials_ended(user_id=instance.user_id, token_id=instance.pk)


def on_user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    credentials_ended(user_id=instance.pk)


def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and request is not None and getattr(request, "session", None) is not None:
        credentials_ended(user_id=user.pk, session_key=request.session.session_key)


def on_user_saved(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """A deactivated user's sockets close; a change of staff flag makes chat sockets check their access again."""
    if update_fields is not None and not {"is_active", "is_staff"} & set(update_fields):
        return  # a login's last_login, a profile edit: nothing about access changed
    if not instance.is_active:
        credentials_ended(user_id=instance.pk)
    elif not instance.is_staff:
        access_changed(user_id=instance.pk)


def access_changed(*, user_id: int) -> None:
    """Ask the user's open sockets to check again what they may read, after the transaction commits."""
    _control_send(user_id, {"type": "access.changed"})


# At most this many channel-layer and slot calls in flight per event loop for housekeeping (leaving
# groups, heartbeats): when thousands of sockets close or beat at once, the rest wait their turn
# instead of exhausting the layer's connection pool.
HOUSEKEEPING_CONCURRENCY = 50
_housekeeping: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()


def _housekeeping_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    return _housekeeping.setdefault(loop, asyncio.Semaphore(HOUSEKEEPING_CONCURRENCY))


async def leave_group(layer: Any, group: str, channel: str) -> None:
    """Leave a group, bounded by a timeout, never raising: a stale membership lapses with the group expiry."""
    try:
        async with _housekeeping_slots():
            await asyncio.wait_for(layer.group_discard(group, channel), timeout=5)
    except Exception as exc:
        logger.warning("channel_layer.group_discard_failed", extra={"group": group, "error": repr(exc)})


# --- the base consumer ----------------------------------------------------------------


class RealtimeConsumer(AsyncWebsocketConsumer):
    """A consumer whose slot, groups and tasks are released whatever ends it.

    Subclasses implement `open()` (accept, or close with a code), `handle(frame)` for
    a client's JSON object frame, and may override `close_down()` for their own
    cleanup. They join groups with `join()` so they are left at the end.
    """

    slot_kind: ClassVar[str] = ""
    max_connections_setting: ClassVar[str] = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.joined: list[str] = []
        self.slot_taken = False
        self.closed = False
        self.heartbeat: asyncio.Task[None] | None = None
        self.seen_written = float("-inf")

        async def send_unless_closed(message: dict[str, Any]) -> None:
            if self.closed:
                return  # a send after close (or after the client vanished) is dropped
            if message["type"] == "websocket.close":
                self.closed = True
            try:
                await send(message)
            except (OSError, RuntimeError):
                self.closed = True  # the client is gone: uvicorn's ClientDisconnected is an OSError

        shutdown.socket_opened(self)
        open_sockets = metrics.websockets_open.labels(kind=self.slot_kind or "other")
        open_sockets.inc()
        try:
            await super().__call__(scope, receive, send_unless_closed)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The channel layer (Redis) went away under the socket: say "try again later", not a crash.
            logger.warning("websocket.layer_lost", extra={"path": scope.get("path"), "error": repr(exc)})
            with contextlib.suppress(Exception):
                await send_unless_closed({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
        finally:
            shutdown.socket_closed(self)
            open_sockets.dec()
            # Shielded: a cancelled consumer (server shutdown) still gives its slot and groups back.
            await asyncio.shield(self._release())

    async def _release(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.heartbeat
        try:
            await self.close_down()
        except Exception:
            logger.warning("websocket.close_down_failed", exc_info=True)
        if isinstance(self.channel_layer, RedisChannelLayer):
            # Nothing reads the channel any more (Channels has cancelled its receive): what reaches it
            # from now on, a broadcast that races the group leaves below included, is dropped.
            self.channel_layer.forget(self.channel_name)
        for group in self.joined:
            await leave_group(self.channel_layer, group, self.channel_name)
        self.joined = []
        if self.slot_taken:
            self.slot_taken = False
            with contextlib.suppress(Exception):
                async with _housekeeping_slots():
                    await asyncio.wait_for(slot_release(self.slot_kind, self.scope["user"].pk, self.channel_name), 5)

    def gone(self) -> bool:
        """Whether the socket has closed (read afresh after every await; a flag checked once goes stale)."""
        return self.closed

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without its hop to the process's one shared thread before every message.

        Channels closes stale database connections there (a thread-sensitive call), so a
        blocked shared thread would stall every socket's every frame. `ws_db` hands its
        connection back after each call instead.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.append(group)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        user = self.scope["user"]
        try:
            if self.slot_kind:
                cap = getattr(settings, self.max_connections_setting)
                if not await slot_acquire(self.slot_kind, user.pk, self.channel_name, cap=cap):
                    await self.close(code=CLOSE_TOO_MANY)
                    return
                self.slot_taken = True
            await self.join(control_group(user.pk))
            # Joined first, checked second: a credential that ended between the guard's check and the
            # join above is caught here, and one that ends from now on reaches the control group.
            if not await ws_db(credential_current, pool="handshake")(self.scope):
                await self.close(code=CLOSE_CREDENTIALS_ENDED)
                return
            await self.open()
        except StopConsumer:
            raise
        except Exception as exc:
            if is_outage(exc):
                logger.warning("websocket.unavailable", extra={"path": self.scope.get("path"), "error": repr(exc)})
                await self.close(code=CLOSE_TRY_AGAIN)
            else:
                logger.exception("websocket.open_failed", extra={"path": self.scope.get("path")})
                await self.close(code=CLOSE_SERVER_ERROR)
            return
        if not self.closed:
            self.heartbeat = asyncio.create_task(self._beat())

    async def _seen(self) -> None:
        """Record that the user is online (marketplace.notifications.presence), at most once a minute per socket."""
        from marketplace.notifications.presence import WRITE_EVERY, presence_seen

        now = time.monotonic()
        if now - self.seen_written < WRITE_EVERY.total_seconds():
            return
        self.seen_written = now
        try:
            await ws_db(presence_seen)(self.scope["user"].pk)
        except Exception as exc:
            # Presence only holds back chat emails; a socket never fails for it.
            logger.warning("websocket.presence_failed", extra={"error": repr(exc)})

    async def _beat(self) -> None:
        """Keep the slot and the group memberships alive while the socket is."""
        user_id, period = self.scope["user"].pk, settings.WEBSOCKET_HEARTBEAT_SECONDS
        await self._seen()  # here, not in the handshake: a slow database never delays a connection
        # The first beat at a random point of the period, so sockets opened together do not beat together.
        await asyncio.sleep(random.uniform(0.5, 1.0) * period)  # noqa: S311 (spreading load, not security)
        while True:
            try:
                async with _housekeeping_slots():
                    if self.slot_taken:
                        await slot_refresh(self.slot_kind, user_id, self.channel_name)
                    for group in self.joined:
                        await self.channel_layer.group_add(group, self.channel_name)
            except Exception as exc:
                logger.warning("websocket.heartbeat_failed", extra={"error": repr(exc)})
            await self._seen()
            await asyncio.sleep(period)

    async def open(self) -> None:
        await self.accept()

    async def close_down(self) -> None:
        """Subclasses release what they hold beyond slots and groups."""

    async def handle(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closed:
            return  # frames that arrive after an abuse close are not read
        limit = settings.CHAT_MAX_FRAME_BYTES
        if (len(text_data.encode()) if text_data is not None else len(bytes_data or b"")) > limit:
            await self.refuse("frame_too_large", f"Frames are at most {limit} bytes.")
            return
        try:
            frame = json.loads(text_data if text_data is not None else (bytes_data or b"").decode())
        except ValueError:
            await self.refuse("invalid_json", "Frames are JSON objects.")
            return
        if not isinstance(frame, dict):
            await self.refuse("invalid_json", "Frames are JSON objects.")
            return
        try:
            await self.handle(frame)
        except Exception as exc:
            if is_outage(exc):
                await self.send_json({"type": "error", "code": "unavailable", "detail": _UNAVAILABLE})
                return
            logger.exception("websocket.handler_failed", extra={"path": self.scope.get("path")})
            await self.send_json({"type": "error", "code": "server_error", "detail": "Something broke; try again."})

    async def refuse(self, code: str, detail: str) -> None:
        """Answer a bad frame with an error frame (subclasses may count these toward an abuse close)."""
        await self.send_json({"type": "error", "code": code, "detail": detail})

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        self.closed = True
        raise StopConsumer()

    # --- events from the channel layer ---------------------------------------------

    async def access_changed(self, event: dict[str, Any]) -> None:
        """Subclasses whose access can be lost check it again here (chat)."""

    async def credentials_ended(self, event: dict[str, Any]) -> None:
        scope = self.scope
        mine = (
            (event["token_id"] is None and event["session_key"] is None)
            or (event["token_id"] is not None and scope.get("auth_token_id") == event["token_id"])
            or (event["session_key"] is not None and scope.get("auth_session_key") == event["session_key"])
        )
        if mine:
            await self.close(code=CLOSE_CREDENTIALS_ENDED)
            raise StopConsumer()


_UNAVAILABLE = "The service is briefly unavailable; your message was not taken. Retry in a moment."
