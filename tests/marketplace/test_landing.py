import pytest

pytestmark = pytest.mark.django_db


def test_landing_page_says_what_vetted_is_and_links_onwards(client):
    response = client.get("/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "marketplace of pre-vetted software engineers" in page
    for link in ('href="/api/docs"', 'href="/admin/"', 'href="/health/ready"', 'href="/docs/demo"'):
        assert link in page


def test_landing_page_lists_the_demo_logins_in_development(client):
    page = client.get("/").content.decode()

    assert "client@vetted.test" in page
    assert "staff@vetted.test" in page
    assert "vetted-demo-pass" in page


def test_landing_page_refuses_writes(client):
    response = client.post("/")

    assert response.status_code == 405


def test_demo_story_renders_the_docs_page(client):
    response = client.get("/docs/demo")

    assert response.status_code == 200
    assert "<h1>" in response.content.decode()


def test_favicon_points_at_a_served_icon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/marketplace/favicon.svg"


def test_the_demo_story_is_not_served_in_production(client, settings):
    settings.PRODUCTION = True

    response = client.get("/docs/demo")
    landing = client.get("/").content.decode()

    assert response.status_code == 404
    assert "vetted-demo-pass" not in response.content.decode()
    assert 'href="/docs/demo"' not in landing
    assert "vetted-demo-pass" not in landing
