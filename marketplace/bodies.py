"""Request bodies are read whole, within a time limit, before Django sees the request.

A client that declares a body and then sends it slowly (or never) would otherwise hold
a connection, and a worker thread, for as long as it likes. This ASGI middleware reads
the body first: all of it within REQUEST_BODY_TIMEOUT_SECONDS, or the request is
answered 408 and never reaches a view; a declared Content-Length over
DATA_UPLOAD_MAX_MEMORY_SIZE is answered 413 before a byte is read. Then the app gets
the body from memory. Bodies here are JSON documents of a few kilobytes; nothing
streams uploads.
"""

import asyncio
import json
from typing import Any

from django.conf import settings

from marketplace.versions import CURRENT

Scope = dict[str, Any]


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(scope: Scope, send: Any, status: int, code: str, detail: str) -> None:
    body = json.dumps({"code": code, "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if scope.get("path", "").startswith("/api/"):
        # Answered before Django reads the request, so in the current version (marketplace.versions).
        headers.append((b"vetted-version", CURRENT.encode()))
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def read_bodies_in_time(app: Any) -> Any:
    """Wrap an ASGI app: HTTP request bodies are buffered within a deadline (408) and a size limit (413)."""

    async def middleware(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        declared = _declared_length(scope)
        if limit is not None and declared is not None and declared > limit:
            await _answer(scope, send, 413, "payload_too_large", "The request body is too large.")
            return
        chunks, size, more = [], 0, True
        try:
            async with asyncio.timeout(settings.REQUEST_BODY_TIMEOUT_SECONDS):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client left before finishing its request: nothing to answer
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if limit is not None and size > limit:
                        await _answer(scope, send, 413, "payload_too_large", "The request body is too large.")
                        return
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            await _answer(scope, send, 408, "request_timeout", "The request body did not arrive in time.")
            return
        body, replayed = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())  # after the body: only the disconnect is left to wait for

        await app(scope, replay, send)

    return middleware
