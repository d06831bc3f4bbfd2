"""Every asset the API docs and the admin reference is served, by a real server, in both modes."""

import os
import re
import secrets
import subprocess
import sys

import httpx
import pytest

from tests.processes import ROOT, asgi_server, current_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PAGES = ("/api/docs", "/admin/login/")
CONTENT_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def _production_env(var_dir) -> dict[str, str]:
    return {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "STRIPE_SECRET_KEY": "sk_test_static_files",
        "STRIPE_WEBHOOK_SECRET": "whsec_static_files",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_static_files",
        "VETTED_VAR_DIR": str(var_dir),
    }


def _assets(base: str) -> dict[str, httpx.Response]:
    served = {}
    for page in PAGES:
        html = httpx.get(f"{base}{page}", timeout=10)
        assert html.status_code == 200, page
        for path in re.findall(r'(?:href|src)="(/static/[^"]+)"', html.text):
            served[path] = httpx.get(f"{base}{path}", timeout=10)
    return served


def _assert_all_served(served: dict[str, httpx.Response]) -> None:
    assert any(path.startswith("/static/ninja/swagger-ui-bundle") for path in served)
    assert any(path.startswith("/static/admin/css/base") for path in served)
    for path, response in served.items():
        assert response.status_code == 200, path
        suffix = path[path.rindex(".") :]
        assert response.headers["content-type"].startswith(CONTENT_TYPES[suffix]), path


def test_development_serves_every_asset_without_collectstatic(tmp_path):
    with asgi_server(log_dir=tmp_path, env={"VETTED_VAR_DIR": str(tmp_path / "var")}) as base:
        served = _assets(base)

    _assert_all_served(served)
    assert not (tmp_path / "var" / "static" / "admin").exists()


def test_production_serves_hashed_assets_with_far_future_caching(tmp_path):
    env = _production_env(tmp_path / "var")
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=ROOT,
        env={**os.environ, **env, "DATABASE_URL": current_database_url()},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert collected.returncode == 0, collected.stderr.decode()

    with asgi_server(log_dir=tmp_path, env=env) as base:
        served = _assets(base)
        landing = httpx.get(f"{base}/", timeout=10)
        demo_story = httpx.get(f"{base}/docs/demo", timeout=10)

    _assert_all_served(served)
    for path, response in served.items():
        assert re.search(r"\.[0-9a-f]{12}\.", path), f"{path} has no content hash"
        assert "immutable" in response.headers["cache-control"], path
    assert landing.status_code == 200
    assert "/api/docs" in landing.text
    assert demo_story.status_code == 404
    assert "vetted-demo-pass" not in landing.text
    assert "client@vetted.test" not in landing.text
