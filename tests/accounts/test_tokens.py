import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken, ClientProfile
from tests.factories import PASSWORD, ClientFactory, EngineerFactory

pytestmark = pytest.mark.django_db


def create_token(client, user, name="laptop"):
    response = client.post(
        "/api/auth/tokens",
        json.dumps({"email": user.email, "password": PASSWORD, "name": name}),
        content_type="application/json",
    )
    assert response.status_code == 201
    return response.json()


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_token_is_shown_once_and_stored_hashed(client):
    user = ClientFactory.create()

    body = create_token(client, user)

    stored = ApiToken.objects.get(pk=body["id"])
    assert body["token"].startswith("vt_")
    assert body["token"].startswith(body["prefix"])
    assert body["token"] not in stored.digest
    assert len(stored.digest) == 64
    listed = client.get("/api/auth/tokens", **bearer(body["token"])).json()
    assert len(listed["items"]) == 1
    assert "token" not in listed["items"][0]


def test_token_authenticates_api_calls(client):
    user = EngineerFactory.create()
    raw = create_token(client, user)["token"]

    response = client.get("/api/me", **bearer(raw))

    assert response.status_code == 200
    assert response.json()["id"] == user.pk
    assert ApiToken.objects.get(user=user).last_used_at is not None


def test_token_creation_with_a_wrong_password_creates_nothing(client):
    user = ClientFactory.create()

    response = client.post(
        "/api/auth/tokens",
        json.dumps({"email": user.email, "password": "nope", "name": "x"}),
        content_type="application/json",
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert ApiToken.objects.count() == 0


def test_a_revoked_token_is_refused(client):
    user = ClientFactory.create()
    raw = create_token(client, user)["token"]
    token_id = ApiToken.objects.get(user=user).pk

    revoked = client.delete(f"/api/auth/tokens/{token_id}", **bearer(raw))

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = client.get("/api/me", **bearer(raw))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_an_unknown_token_is_refused(client):
    response = client.get("/api/me", **bearer("vt_not-a-real-token"))

    assert response.status_code == 401


def test_another_user_cannot_revoke_my_token(client):
    owner, outsider = ClientFactory.create(), ClientFactory.create()
    create_token(client, owner)
    outsider_raw = create_token(client, outsider)["token"]
    owner_token = ApiToken.objects.get(user=owner)

    response = client.delete(f"/api/auth/tokens/{owner_token.pk}", **bearer(outsider_raw))

    assert response.status_code == 404
    assert response.json()["code"] == "token_not_found"
    owner_token.refresh_from_db()
    assert owner_token.revoked_at is None


def test_token_list_shows_only_my_tokens_with_fixed_queries(client, django_assert_num_queries):
    owner, other = ClientFactory.create(), ClientFactory.create()
    raw = create_token(client, owner, "one")["token"]
    create_token(client, owner, "two")
    create_token(client, other, "theirs")
    client.get("/api/me", **bearer(raw))  # records last_used_at, which is written at most once a minute

    # token lookup, page
    with django_assert_num_queries(2):
        response = client.get("/api/auth/tokens", **bearer(raw))

    assert [item["name"] for item in response.json()["items"]] == ["two", "one"]


def test_token_list_page_size_is_bounded(client):
    user = ClientFactory.create()
    raw = create_token(client, user)["token"]

    response = client.get("/api/auth/tokens?limit=1000", **bearer(raw))

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("factory", [ClientFactory, EngineerFactory])
def test_me_by_token_is_one_query_with_the_profile(client, django_assert_num_queries, factory):
    user = factory.create()
    raw = create_token(client, user)["token"]
    client.get("/api/me", **bearer(raw))  # records last_used_at, which is written at most once a minute

    # the token, its user and both profiles, in one statement
    with django_assert_num_queries(1):
        response = client.get("/api/me", **bearer(raw))

    body = response.json()
    assert (body["id"], body["role"]) == (user.pk, user.role)
    profile = "client_profile" if user.role == "client" else "engineer_profile"
    assert body[profile] is not None


@pytest.mark.parametrize("factory", [ClientFactory, EngineerFactory])
def test_me_by_session_answers_the_same_as_by_token(client, factory):
    user = factory.create()
    raw = create_token(client, user)["token"]
    by_token = client.get("/api/me", **bearer(raw)).json()
    client.logout()

    client.force_login(user)
    by_session = client.get("/api/me")

    assert by_session.status_code == 200
    assert by_session.json() == by_token


def test_other_endpoints_read_the_token_without_the_profiles(client):
    user = ClientFactory.create()
    raw = create_token(client, user)["token"]
    client.get("/api/auth/tokens", **bearer(raw))
    profile_table = ClientProfile._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/auth/tokens", **bearer(raw)).status_code == 200

    assert profile_table not in queries.captured_queries[0]["sql"]


def test_a_deactivated_users_token_is_refused_and_last_use_is_recorded_once_a_minute(client):
    user = ClientFactory.create()
    raw = create_token(client, user)["token"]

    assert client.get("/api/me", **bearer(raw)).status_code == 200
    first_use = ApiToken.objects.get(user=user).last_used_at
    assert client.get("/api/me", **bearer(raw)).status_code == 200
    assert ApiToken.objects.get(user=user).last_used_at == first_use is not None

    type(user).objects.filter(pk=user.pk).update(is_active=False)

    assert client.get("/api/me", **bearer(raw)).status_code == 401


@pytest.mark.parametrize("header", ["Bearer\t{token}", "Bearer: {token}", "Basic {token}", "Token {token}", "{token}"])
def test_a_mistyped_authorization_header_is_refused_and_never_logged(client, settings, caplog, header):
    settings.DEBUG = True  # ninja's own bearer parsing logs a header it cannot read, under DEBUG
    token = create_token(client, ClientFactory.create())["token"]

    response = client.get("/api/me", HTTP_AUTHORIZATION=header.format(token=token))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert all(token not in record.getMessage() for record in caplog.records)


def test_the_bearer_scheme_is_case_insensitive(client):
    token = create_token(client, ClientFactory.create())["token"]
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert client.get("/api/me", HTTP_AUTHORIZATION=f"{scheme} {token}").status_code == 200


def test_the_tokens_raw_columns_are_converted_as_the_backend_converts_its_own():
    """SQLite hands back a naive datetime for a raw column; the ORM's converter makes model fields aware (UTC).
    The suite runs on PostgreSQL, whose driver answers aware datetimes, so the SQLite side is checked here."""
    from datetime import UTC, datetime

    from django.db import connections
    from django.db.backends.sqlite3.base import DatabaseWrapper

    from accounts.services import _TOKEN_COLUMNS

    probe = DatabaseWrapper({**connections["default"].settings_dict, "ENGINE": "django.db.backends.sqlite3"}, "probe")
    connections["probe"] = probe
    try:
        naive = datetime(2026, 1, 1, 9, 30)  # noqa: DTZ001 - what SQLite's driver returns
        row = [7, 3, "laptop", "vtd_abcdef", "f" * 64, naive, naive, None]
        token = _TOKEN_COLUMNS.build(row, probe)
    finally:
        del connections["probe"]

    assert token is not None
    assert token.last_used_at == token.created_at == datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    assert (token.pk, token.user_id, token.name, token._state.db, token._state.adding) == (
        7,
        3,
        "laptop",
        "probe",
        False,
    )
