"""Under /api/, every error is the JSON error format, whatever produced it."""

import pytest
from django.test import Client

from accounts.models import User
from payments.models import Milestone
from tests.factories import StaffFactory
from tests.payments.helpers import engagement

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/nope", "/api/nope/deeper/", "/api/payments/", "/api/%00"])
def test_an_unknown_api_path_is_a_json_404(path):
    response = Client().get(path)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_method_an_endpoint_does_not_take_is_a_json_405_with_allow():
    response = Client().delete("/api/auth/login")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "POST" in response["Allow"]


def test_a_body_over_the_limit_is_a_json_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000

    response = Client().post("/api/auth/tokens", "x" * 5_000, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_an_unexpected_error_is_a_json_500_even_in_development(settings, monkeypatch):
    settings.DEBUG = True
    staff = StaffFactory.create()
    client = Client(raise_request_exception=False)
    client.force_login(staff)

    def broken(user):
        raise RuntimeError("a bug")

    monkeypatch.setattr("accounts.api._me", broken)
    response = client.get("/api/me")

    assert response.status_code == 500
    assert response.json() == {
        "code": "server_error",
        "detail": "Something went wrong on our side; it has been logged.",
    }


@pytest.mark.parametrize("query", ["offset=10", "limit=0", "limit=101", "cursor=" + "A" * 1025, "cursor=a%20b"])
def test_offsets_bad_cursors_and_limits_out_of_range_are_a_422(query):
    client = Client()
    client.force_login(StaffFactory.create())

    response = client.get(f"/api/vetting/staff/queue?{query}")

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_pages_outside_the_api_keep_html_errors():
    response = Client().get("/no-such-page")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_a_broken_business_rule_names_its_field_like_a_schema_error():
    client = Client()
    weak = client.post(
        "/api/auth/register",
        {"email": "weak@example.test", "password": "password", "role": "client", "full_name": "W"},
        content_type="application/json",
    )
    made = engagement(onboarded=False)
    client.force_login(made.client)
    past = client.post(
        f"/api/payments/engagements/{made.pk}/milestones",
        {"title": "Late", "amount_minor": 10_000, "due_date": "2001-01-01"},
        content_type="application/json",
    )

    assert (weak.status_code, weak.json()["code"]) == (422, "weak_password")
    assert [e["field"] for e in weak.json()["errors"]] == ["password"]
    assert (past.status_code, past.json()["code"]) == (422, "invalid_milestone")
    assert [e["field"] for e in past.json()["errors"]] == ["due_date"]
    assert not User.objects.filter(email="weak@example.test").exists()
    assert not Milestone.objects.exists()


def test_a_currency_outside_the_list_is_refused_by_the_schema_and_upper_case_is_stored_lower():
    from accounts.models import EngineerProfile
    from tests.factories import EngineerFactory

    engineer = EngineerFactory.create()
    client = Client()
    client.force_login(engineer)
    path = f"/api/accounts/engineer-profiles/{engineer.engineer_profile.pk}"
    before = EngineerProfile.objects.values().get(pk=engineer.engineer_profile.pk)

    refused = client.patch(path, {"currency": "xyz"}, content_type="application/json")
    unchanged = EngineerProfile.objects.values().get(pk=engineer.engineer_profile.pk)
    accepted = client.patch(path, {"currency": "EUR"}, content_type="application/json")

    assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
    assert [e["field"] for e in refused.json()["errors"]] == ["currency"]
    assert unchanged == before
    assert (accepted.status_code, accepted.json()["currency"]) == (200, "eur")
