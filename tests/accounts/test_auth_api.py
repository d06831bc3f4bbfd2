import pytest
from django.contrib.sessions.models import Session

from accounts.models import ApiToken, ClientProfile, EngineerProfile, User
from tests.api_calls import post_json
from tests.conftest import csrf_token
from tests.factories import PASSWORD, ClientFactory

pytestmark = pytest.mark.django_db


def test_register_creates_client_with_profile_and_logs_in(csrf_client):
    token = csrf_token(csrf_client)

    response = post_json(
        csrf_client,
        "/api/auth/register",
        {"email": "New.Client@Example.test", "password": PASSWORD, "role": "client", "full_name": "Nia"},
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new.client@example.test"
    assert body["role"] == "client"
    assert body["client_profile"]["time_zone"] == "UTC"
    assert body["engineer_profile"] is None
    assert csrf_client.get("/api/me").json()["email"] == "new.client@example.test"
    assert ClientProfile.objects.filter(user__email="new.client@example.test").count() == 1


def test_register_engineer_gets_engineer_profile(csrf_client):
    token = csrf_token(csrf_client)

    response = post_json(
        csrf_client,
        "/api/auth/register",
        {"email": "eng@example.test", "password": PASSWORD, "role": "engineer"},
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 201
    assert response.json()["engineer_profile"]["skills"] == []
    assert EngineerProfile.objects.filter(user__email="eng@example.test").exists()


def test_register_refuses_a_taken_email_and_creates_nothing(csrf_client):
    ClientFactory.create(email="taken@example.test")
    token = csrf_token(csrf_client)

    response = post_json(
        csrf_client,
        "/api/auth/register",
        {"email": "TAKEN@example.test", "password": PASSWORD, "role": "engineer"},
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert User.objects.count() == 1
    assert EngineerProfile.objects.count() == 0


def test_register_refuses_a_weak_password(csrf_client):
    token = csrf_token(csrf_client)

    response = post_json(
        csrf_client,
        "/api/auth/register",
        {"email": "weak@example.test", "password": "12345678", "role": "client"},
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"
    assert not User.objects.filter(email="weak@example.test").exists()


def test_register_refuses_staff_as_a_role(csrf_client):
    token = csrf_token(csrf_client)

    response = post_json(
        csrf_client,
        "/api/auth/register",
        {"email": "sneaky@example.test", "password": PASSWORD, "role": "client", "is_staff": True},
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert not User.objects.filter(email="sneaky@example.test").exists()


def test_register_without_csrf_token_is_refused(csrf_client):
    csrf_token(csrf_client)

    response = post_json(
        csrf_client, "/api/auth/register", {"email": "x@example.test", "password": PASSWORD, "role": "client"}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert not User.objects.filter(email="x@example.test").exists()


def test_login_sets_a_session(csrf_client):
    user = ClientFactory.create(email="login@example.test")
    token = csrf_token(csrf_client)

    response = post_json(
        csrf_client, "/api/auth/login", {"email": "login@example.test", "password": PASSWORD}, HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 200
    assert response.json()["id"] == user.pk
    assert csrf_client.get("/api/me").json()["id"] == user.pk


def test_login_with_a_wrong_password_is_refused(csrf_client):
    ClientFactory.create(email="login@example.test")
    token = csrf_token(csrf_client)

    response = post_json(
        csrf_client, "/api/auth/login", {"email": "login@example.test", "password": "wrong"}, HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 401
    assert response.json() == {"code": "invalid_credentials", "detail": "The email address or password is wrong."}
    assert csrf_client.get("/api/me").status_code == 401


def test_login_without_csrf_token_is_refused(csrf_client):
    ClientFactory.create(email="login@example.test")
    csrf_token(csrf_client)

    response = post_json(csrf_client, "/api/auth/login", {"email": "login@example.test", "password": PASSWORD})

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert Session.objects.count() == 0


def test_logout_ends_the_session(csrf_client):
    user = ClientFactory.create()
    csrf_client.force_login(user)
    token = csrf_token(csrf_client)

    response = csrf_client.post("/api/auth/logout", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 204
    assert csrf_client.get("/api/me").status_code == 401


def test_logout_without_csrf_token_is_refused_and_the_session_stays(csrf_client):
    user = ClientFactory.create()
    csrf_client.force_login(user)
    csrf_token(csrf_client)

    response = csrf_client.post("/api/auth/logout")

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert csrf_client.get("/api/me").json()["id"] == user.pk


def test_login_is_rate_limited_per_email(client, settings):
    settings.RATE_LIMIT_LOGIN = "3/60"
    user = ClientFactory.create(email="target@example.test")
    for _ in range(3):
        assert post_json(client, "/api/auth/login", {"email": user.email, "password": "bad"}).status_code == 401

    response = post_json(client, "/api/auth/login", {"email": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60  # what is left of the window (tests/marketplace/test_http.py)
    user.refresh_from_db()
    assert user.last_login is None


def test_token_creation_is_rate_limited(client, settings):
    settings.RATE_LIMIT_TOKEN_CREATE = "2/60"
    user = ClientFactory.create()
    body = {"email": user.email, "password": PASSWORD, "name": "ci"}
    assert post_json(client, "/api/auth/tokens", body).status_code == 201
    assert post_json(client, "/api/auth/tokens", body).status_code == 201

    response = post_json(client, "/api/auth/tokens", body)

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert ApiToken.objects.filter(user=user).count() == 2


def test_me_requires_authentication(client):
    response = client.get("/api/me")

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "Log in or send an API token."}


def full_width(word: str) -> str:
    """The word in full-width Latin letters (U+FF41...), which NFKC folds back to ASCII."""
    return "".join(chr(ord(letter) + 0xFEE0) for letter in word)


@pytest.mark.parametrize(
    "spelling", ["TAKEN@example.test", "  taken@example.test ", f"{full_width('taken')}@example.test"]
)
def test_another_spelling_of_a_taken_email_is_the_same_account(csrf_client, spelling):
    # Full-width letters are the same address after NFKC; case and spaces never make a new account.
    ClientFactory.create(email="taken@example.test")
    token = csrf_token(csrf_client)

    response = post_json(
        csrf_client,
        "/api/auth/register",
        {"email": spelling, "password": PASSWORD, "role": "engineer"},
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 409
    assert User.objects.count() == 1


@pytest.mark.parametrize("spelling", ["Staff@Example.test", f"{full_width('staff')}@example.test"])
def test_the_admin_login_finds_the_account_under_any_spelling(client, spelling):
    from tests.factories import StaffFactory

    StaffFactory.create(email="staff@example.test")

    response = client.post("/admin/login/?next=/admin/", {"username": spelling, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_saving_a_user_stores_the_canonical_address(db):
    user = ClientFactory.create(email="  Mixed.Case@Example.TEST ")

    user.refresh_from_db()
    assert user.email == "mixed.case@example.test"


def test_a_program_without_cookies_registers_and_makes_a_token_with_json_alone():
    from django.test import Client

    program = Client(enforce_csrf_checks=True)
    body = {"email": "bot@example.test", "password": PASSWORD, "role": "client", "full_name": "Bot"}

    registered = program.post("/api/auth/register", body, content_type="application/json")
    program.cookies.clear()  # a program keeps no cookies
    token = program.post(
        "/api/auth/tokens",
        {"email": "bot@example.test", "password": PASSWORD, "name": "ci"},
        content_type="application/json",
    )

    assert registered.status_code == 201
    assert token.status_code == 201
    assert token.json()["token"].startswith("vt_")


def test_a_browser_with_cookies_still_needs_the_csrf_token_to_register(csrf_client):
    csrf_token(csrf_client)  # the browser has the csrftoken cookie now

    response = post_json(
        csrf_client, "/api/auth/register", {"email": "b@example.test", "password": PASSWORD, "role": "client"}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert not User.objects.filter(email="b@example.test").exists()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary="],
)
def test_a_body_that_is_not_json_is_a_415_and_changes_nothing(client, content_type):
    body = '{"email": "c@example.test", "password": "x", "role": "client"}'
    if content_type == "application/x-www-form-urlencoded":
        body = "email=c%40example.test&password=x&role=client"

    response = client.post("/api/auth/register", body, content_type=content_type)

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert not User.objects.filter(email="c@example.test").exists()
