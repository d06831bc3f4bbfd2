"""A client that forges X-Forwarded-For from 127.0.0.1 keeps its own address: the per-address limit holds."""

import httpx
import pytest

from marketplace.proxies import uvicorn_proxy_args
from tests.processes import asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_rotating_forged_forwarded_for_does_not_escape_the_per_address_limit(tmp_path):
    env = {"RATE_LIMIT_TOKEN_CREATE": "3/60", "FORWARDED_ALLOW_IPS": ""}
    with asgi_server(log_dir=tmp_path, env=env) as base:
        statuses = []
        for n in range(8):
            response = httpx.post(
                f"{base}/api/auth/tokens",
                # A different email each time, so only the per-address limit can stop it.
                json={"email": f"nobody{n}@example.test", "password": "wrong", "name": "x"},
                headers={"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"198.51.100.{n}"},
                timeout=10,
            )
            statuses.append(response.status_code)

    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429] * 5


def test_with_no_proxy_named_uvicorn_takes_no_proxy_headers(settings):
    settings.FORWARDED_ALLOW_IPS = []
    assert uvicorn_proxy_args() == ["--no-proxy-headers"]
    settings.FORWARDED_ALLOW_IPS = ["10.0.0.0/8", "192.0.2.7"]
    assert uvicorn_proxy_args() == ["--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8,192.0.2.7"]
