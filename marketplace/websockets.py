"""The websocket front door: Origin first, then who is calling, before any consumer runs.

A browser always sends Origin on a websocket handshake, and it is the browser
that a cross-site page would abuse with the user's cookies. So:

- an Origin that is present must be the origin the handshake was sent to (the
  same scheme, host and port as the Host header, with the host in ALLOWED_HOSTS),
  or one listed in WEBSOCKET_ALLOWED_ORIGINS (`https://app.example.com:8443`):
  scheme, host and port are all compared, as RFC 6454 defines an origin;
- a session cookie counts only with a valid Origin;
- a program without Origin must authenticate with `Authorization: Bearer`.

Anything else is refused before accept: the client sees the handshake fail
with HTTP 403. A path no consumer serves is refused the same way (403), never a 500.
Authentication runs in its own thread-sensitive context, so a slow lookup for one
handshake does not queue the others behind it.
"""

import logging
from typing import Any
from urllib.parse import urlparse

from channels.auth import get_user
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from channels.sessions import SessionMiddlewareStack
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from accounts.services import api_token_find
from marketplace.realtime import ws_db
from marketplace.tracing import accept_or_new, request_id

logger = logging.getLogger(__name__)

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _origin_tuple(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or of a URL; None if it is not one (RFC 6454, section 4)."""
    try:
        parsed = urlparse(origin.strip().lower())
        port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme)
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port is None:
        return None
    # An origin is scheme, host and port only: no user, path, query or fragment (RFC 6454, section 6.1).
    if "@" in parsed.netloc or parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        return None
    return parsed.scheme, parsed.hostname, port


def origin_allowed(origin: str, host_header: str | None, *, secure: bool) -> bool:
    """Whether a handshake's Origin is ours: the Host it was sent to, or one of WEBSOCKET_ALLOWED_ORIGINS."""
    seen = _origin_tuple(origin)
    if seen is None:
        return False
    if any(_origin_tuple(allowed) == seen for allowed in settings.WEBSOCKET_ALLOWED_ORIGINS):
        return True
    if not host_header:
        return False
    domain, _ = split_domain_port(host_header)
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    scheme = "https" if secure else "http"
    return _origin_tuple(f"{scheme}://{host_header}") == seen


class WebsocketGuard:
    """ASGI middleware: sets `scope["user"]` and `scope["auth_method"]`, or denies."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        origin = _header(scope, b"origin")
        secure = scope.get("scheme") == "wss"
        if origin is not None and not origin_allowed(origin, _header(scope, b"host"), secure=secure):
            logger.info("websocket.denied", extra={"reason": "origin", "origin": origin, "path": scope.get("path")})
            return await WebsocketDenier.as_asgi()(scope, receive, send)

        user, method, credential = None, None, {}
        authorization = _header(scope, b"authorization") or ""
        if authorization.lower().startswith("bearer "):
            token = await ws_db(api_token_find, pool="handshake")(authorization[7:].strip())
            if token is not None:
                user, method, credential = token.user, "token", {"auth_token_id": token.pk}
        elif origin is not None:
            # Channels' get_user, run on the websocket pool rather than the process's one shared thread.
            session_user = await ws_db(get_user.func, pool="handshake")(scope)
            if session_user.is_authenticated:
                user, method = session_user, "session"
                credential = {"auth_session_key": scope["session"].session_key}

        if user is None:
            logger.info("websocket.denied", extra={"reason": "unauthenticated", "path": scope.get("path")})
            return await WebsocketDenier.as_asgi()(scope, receive, send)
        # The connection's log lines (and the tasks it enqueues) share one request id.
        token = request_id.set(accept_or_new(_header(scope, b"x-request-id")))
        try:
            return await self.inner({**scope, "user": user, "auth_method": method, **credential}, receive, send)
        finally:
            request_id.reset(token)


def guarded(inner: Any) -> Any:
    """Cookies and the session are read by Channels' stack; the guard finds the user and decides."""
    return SessionMiddlewareStack(WebsocketGuard(inner))


class NoRoute(AsyncWebsocketConsumer):
    """The last route: a path no consumer serves is refused at the handshake (HTTP 403), not a 500."""

    async def connect(self) -> None:
        logger.info("websocket.denied", extra={"reason": "no_route", "path": self.scope.get("path")})
        await self.close()
