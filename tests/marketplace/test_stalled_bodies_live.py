"""A client that declares a body and stalls is cut off after REQUEST_BODY_TIMEOUT_SECONDS; bystanders carry on."""

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.processes import asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def _raw(base: str, head: bytes, body: bytes, *, read_for: float) -> bytes:
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=read_for) as conn:
        conn.sendall(head + body)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return answer


def test_a_stalled_body_gets_408_and_a_bystander_is_served_meanwhile(tmp_path):
    with asgi_server(log_dir=tmp_path, env={"REQUEST_BODY_TIMEOUT_SECONDS": "1"}) as base:
        head = b"POST /api/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += b"Content-Length: 1000\r\n\r\n"  # and then only ten bytes of it
        started = time.monotonic()

        answers: list[bytes] = []
        stalled = threading.Thread(target=lambda: answers.append(_raw(base, head, b'{"email": ', read_for=5)))
        stalled.start()
        bystander = httpx.get(f"{base}/health/live", timeout=5)
        stalled.join(timeout=10)
        took = time.monotonic() - started

    status_line, _, rest = answers[0].partition(b"\r\n")
    assert b" 408 " in status_line
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["code"] == "request_timeout"
    assert bystander.status_code == 200
    assert took < 5  # cut off near the 1 s limit, not left hanging


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(tmp_path):
    with asgi_server(log_dir=tmp_path) as base:
        head = b"POST /api/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += b"Content-Length: 999999999\r\n\r\n"
        answer = _raw(base, head, b"", read_for=3)

    assert b" 413 " in answer.split(b"\r\n", 1)[0]
