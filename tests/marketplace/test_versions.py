"""Dated API versions: echoed on every API response, pinned ones accepted, unknown ones refused before anything runs."""

import json
from pathlib import Path

import pytest

from accounts.models import User
from marketplace.api import api
from marketplace.versions import CURRENT, VERSIONS
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_api_response_names_the_current_version_when_none_is_asked(client):
    read = client.get("/api/auth/csrf")
    refused = client.get("/api/me")
    no_such_path = client.get("/api/no-such-thing")

    assert CURRENT == "2026-11-30"
    assert [r["Vetted-Version"] for r in (read, refused, no_such_path)] == [CURRENT] * 3
    assert (refused.status_code, no_such_path.status_code) == (401, 404)


def test_a_pinned_version_is_accepted_and_echoed(client):
    response = client.post(
        "/api/auth/register",
        json.dumps({"email": "pinned@example.test", "password": PASSWORD, "role": "client"}),
        content_type="application/json",
        HTTP_VETTED_VERSION="2026-11-30",
    )

    assert response.status_code == 201
    assert response["Vetted-Version"] == "2026-11-30"


@pytest.mark.parametrize("version", ["2020-01-01", "latest", "", "2026-11-30x"])
def test_an_unknown_version_is_refused_and_nothing_changes(client, version):
    response = client.post(
        "/api/auth/register",
        json.dumps({"email": "unpinned@example.test", "password": PASSWORD, "role": "client"}),
        content_type="application/json",
        HTTP_VETTED_VERSION=version,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_api_version"
    assert response["Vetted-Version"] == CURRENT
    assert not User.objects.filter(email="unpinned@example.test").exists()
    assert "sessionid" not in response.cookies


def test_pages_outside_the_api_carry_no_version(client):
    assert "Vetted-Version" not in client.get("/")


def test_the_openapi_document_is_the_current_version_and_declares_the_header():
    document = api.get_openapi_schema()

    assert document["info"]["version"] == CURRENT
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            (parameter,) = [p for p in operation["parameters"] if p["name"] == "Vetted-Version"]
            assert (parameter["in"], parameter["schema"]["enum"]) == ("header", list(VERSIONS)), f"{method} {path}"
            assert 400 in operation["responses"], f"{method} {path} does not declare unknown_api_version"
            for status, response in operation["responses"].items():
                assert response["headers"]["Vetted-Version"]["schema"]["enum"] == list(VERSIONS), (
                    f"{method} {path} {status}"
                )


def test_the_changelog_has_an_entry_for_every_version():
    changelog = DOCS.read_text().split("### Changelog", 1)[1].split("\n## ", 1)[0]

    assert [line.removeprefix("#### ") for line in changelog.splitlines() if line.startswith("#### ")] == sorted(
        VERSIONS, reverse=True
    )
