"""The websocket front door: Origin first, then who is calling, before any consumer runs.

A browser always sends Origin on a websocket handshake, and it is the browser
that a cross-site page would abuse with the user's cookies. So:

- an Origin that is present must be one we serve (ALLOWED_HOSTS, or
  WEBSOCKET_ALLOWED_ORIGINS when set);
- a session cookie counts only with a valid Origin;
- a program without Origin must authenticate with `Authorization: Bearer`.

Anything else is refused before accept: the client sees the handshake fail
with HTTP 403.
"""

import logging
from typing import Any
from urllib.parse import urlparse

from channels.auth import AuthMiddlewareStack, get_user
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings

from accounts.services import api_token_authenticate
from marketplace.tracing import accept_or_new, request_id

logger = logging.getLogger(__name__)

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


class _OriginMatcher(OriginValidator):
    def __init__(self) -> None:
        allowed = settings.WEBSOCKET_ALLOWED_ORIGINS or list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application=None, allowed_origins=allowed)

    def matches(self, origin: str) -> bool:
        return bool(self.validate_origin(urlparse(origin)))


class WebsocketGuard:
    """ASGI middleware: sets `scope["user"]` and `scope["auth_method"]`, or denies."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        origin = _header(scope, b"origin")
        if origin is not None and not _OriginMatcher().matches(origin):
            logger.info("websocket.denied", extra={"reason": "origin", "origin": origin, "path": scope.get("path")})
            return await WebsocketDenier.as_asgi()(scope, receive, send)

        user, method = None, None
        authorization = _header(scope, b"authorization") or ""
        if authorization.lower().startswith("bearer "):
            user = await database_sync_to_async(api_token_authenticate)(authorization[7:].strip())
            method = "token"
        elif origin is not None:
            session_user = await get_user(scope)
            if session_user.is_authenticated:
                user, method = session_user, "session"

        if user is None:
            logger.info("websocket.denied", extra={"reason": "unauthenticated", "path": scope.get("path")})
            return await WebsocketDenier.as_asgi()(scope, receive, send)
        # The connection's log lines (and the tasks it enqueues) share one request id.
        token = request_id.set(accept_or_new(_header(scope, b"x-request-id")))
        try:
            return await self.inner({**scope, "user": user, "auth_method": method}, receive, send)
        finally:
            request_id.reset(token)


def guarded(inner: Any) -> Any:
    """Cookies and session are read by Channels' stack; the guard decides."""
    return AuthMiddlewareStack(WebsocketGuard(inner))
