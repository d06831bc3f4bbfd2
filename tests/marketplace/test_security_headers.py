"""Every response carries the security headers: CSP, Referrer-Policy, Permissions-Policy, nosniff."""

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/api/docs", "/admin/login/", "/api/openapi.json", "/api/nope", "/health/live"])
def test_the_security_headers_are_on_every_kind_of_page(path):
    response = Client().get(path)

    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self';" in csp  # no inline script anywhere
    assert "frame-ancestors 'none'" in csp
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_an_api_server_error_carries_the_security_headers_too(monkeypatch):
    from tests.factories import StaffFactory

    client = Client(raise_request_exception=False)
    client.force_login(StaffFactory.create())
    monkeypatch.setattr("accounts.api._me", lambda user: 1 / 0)

    response = client.get("/api/me")

    assert response.status_code == 500
    assert "default-src 'self'" in response["Content-Security-Policy"]
