"""Conditional GET on API reads: strong ETags, 304 on If-None-Match, per-user caching headers."""

import json

import pytest

from accounts.models import ApiToken
from accounts.services import api_token_create
from tests.factories import PASSWORD, ClientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token() -> str:
    return api_token_create(user=ClientFactory.create(), name="ci")[1]


def me(client, token: str, **headers):
    return client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def test_a_read_has_a_strong_etag_that_stays_the_same(client, token):
    first = me(client, token)
    second = me(client, token)

    assert first.status_code == 200
    assert first["ETag"].startswith('"')  # strong: no W/ prefix
    assert len(first["ETag"]) == 34  # the md5 of the body, hex, quoted
    assert second["ETag"] == first["ETag"]


def test_a_read_is_private_must_be_revalidated_and_varies_by_credentials(client, token):
    response = me(client, token)

    assert set(response["Cache-Control"].split(", ")) == {"private", "no-cache"}
    assert {"Authorization", "Cookie", "Vetted-Version"} <= {v.strip() for v in response["Vary"].split(",")}


def test_if_none_match_with_the_current_etag_is_a_304_with_no_body(client, token):
    etag = me(client, token)["ETag"]

    response = me(client, token, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert set(response["Cache-Control"].split(", ")) == {"private", "no-cache"}
    assert response["Vetted-Version"] == "2026-11-30"


def test_a_changed_object_gets_a_new_etag_and_a_200(client, token):
    before = me(client, token)
    profile_id = before.json()["client_profile"]["id"]
    changed = client.patch(
        f"/api/accounts/client-profiles/{profile_id}",
        json.dumps({"company": "Globex"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    after = me(client, token, HTTP_IF_NONE_MATCH=before["ETag"])

    assert changed.status_code == 200
    assert after.status_code == 200
    assert after.json()["client_profile"]["company"] == "Globex"
    assert after["ETag"] != before["ETag"]


def test_another_users_etag_does_not_match(client, token):
    etag = me(client, token)["ETag"]
    other = api_token_create(user=ClientFactory.create(), name="ci")[1]

    response = me(client, other, HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert response["ETag"] != etag


def test_a_write_has_no_etag_and_ignores_if_none_match(client):
    user = ClientFactory.create()
    body = json.dumps({"email": user.email, "password": PASSWORD, "name": "ci"})

    response = client.post("/api/auth/tokens", body, content_type="application/json", HTTP_IF_NONE_MATCH="*")

    assert response.status_code == 201
    assert "ETag" not in response
    assert ApiToken.objects.filter(user=user).count() == 1


def test_errors_and_pages_that_are_not_json_have_no_etag(client):
    refused = client.get("/api/me")
    docs = client.get("/api/docs")

    assert refused.status_code == 401
    assert "ETag" not in refused
    assert docs.status_code == 200
    assert "ETag" not in docs


def test_if_match_with_a_stale_etag_on_a_read_is_a_412_in_json(client, token):
    response = me(client, token, HTTP_IF_MATCH='"stale"')

    assert response.status_code == 412
    assert response.json()["code"] == "precondition_failed"


def test_pages_outside_the_api_keep_their_own_caching(client):
    response = client.get("/")

    assert "ETag" not in response
    assert "private" not in response.get("Cache-Control", "")


async def test_under_asgi_the_same_etag_gives_a_304(async_client):
    # The OpenAPI document: a JSON read that needs no database, which the ASGI handler's own thread would hold open.
    first = await async_client.get("/api/openapi.json")

    again = await async_client.get("/api/openapi.json", headers={"If-None-Match": first["ETag"]})

    assert first.status_code == 200
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    assert again["Vetted-Version"] == "2026-11-30"
