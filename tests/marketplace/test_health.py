import httpx
import pytest

from tests.processes import asgi_server

pytestmark = pytest.mark.django_db(transaction=True)


async def test_live_answers_ok(async_client):
    response = await async_client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_every_dependency(async_client):
    response = await async_client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "channel_layer": "ok", "broker": "ok"}


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
async def test_a_head_probe_gets_the_same_status_without_a_body(async_client, path):
    response = await async_client.head(path)

    assert response.status_code == 200
    assert response.content == b""


async def test_a_write_to_a_probe_is_refused(async_client):
    response = await async_client.post("/health/live")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.live
def test_ready_is_503_naming_the_database_when_it_is_unreachable(tmp_path):
    # Nothing listens on port 1: the connection is refused at once.
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere", "HEALTH_CHECK_TIMEOUT": "3"}

    with asgi_server(log_dir=tmp_path, env=env) as base:
        response = httpx.get(f"{base}/health/ready", timeout=10)

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["code"] == "not_ready"
    assert body["checks"]["cache"] == "ok"


def test_api_docs_and_admin_are_served(client):
    schema = client.get("/api/openapi.json").json()

    assert client.get("/api/docs").status_code == 200
    assert client.get("/admin/login/").status_code == 200
    assert {"/api/me", "/api/auth/tokens", "/api/auth/login", "/api/requests"} <= set(schema["paths"])
