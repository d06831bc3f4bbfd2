"""The production switch, checked in fresh processes: settings are read once at start-up."""

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.live

SECURE = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "k" * 20 + "Zx9!q" + "w" * 30,
    "ALLOWED_HOSTS": "vetted.example.com",
    "STRIPE_SECRET_KEY": "sk_live_from_the_operator",
    "STRIPE_WEBHOOK_SECRET": "whsec_from_the_operator",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_from_the_operator",
}


# manage.py as an install from the wheel runs it: the development packages cannot be imported there.
WITHOUT_DEV_PACKAGES = """
import os
import sys
sys.modules["dev_tools"] = sys.modules["stripe_double"] = None
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", *sys.argv[1:]])
"""


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "manage.py", *args], env)


def manage_without_dev_packages(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-c", WITHOUT_DEV_PACKAGES, *args], env)


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {*SECURE, "DEBUG"}}
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_debug():
    result = manage("check", **{**SECURE, "DEBUG": "true"})

    assert result.returncode != 0
    assert "DEBUG must be false when DJANGO_ENV=production" in result.stderr


def test_production_refuses_the_default_secret_key():
    env = {k: v for k, v in SECURE.items() if k != "SECRET_KEY"}

    result = manage("check", **env)

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_empty_allowed_hosts():
    env = {k: v for k, v in SECURE.items() if k != "ALLOWED_HOSTS"}

    result = manage("check", **env)

    assert result.returncode != 0
    assert "ALLOWED_HOSTS must name the hosts" in result.stderr


def test_production_refuses_the_stripe_double_placeholders():
    env = {k: v for k, v in SECURE.items() if not k.startswith("STRIPE_")}

    result = manage("check", **env)

    assert result.returncode != 0
    assert "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set in production" in result.stderr


def test_production_refuses_a_missing_publishable_key():
    env = {k: v for k, v in SECURE.items() if k != "STRIPE_PUBLISHABLE_KEY"}

    result = manage("check", **env)

    assert result.returncode != 0
    assert "STRIPE_PUBLISHABLE_KEY must be set in production" in result.stderr


def test_a_test_publishable_key_beside_a_live_secret_key_is_refused():
    result = manage("check", **{**SECURE, "STRIPE_PUBLISHABLE_KEY": "pk_test_from_the_operator"})

    assert result.returncode != 0
    assert "must both be live keys or both test keys" in result.stderr


def test_a_bad_value_fails_loudly_naming_the_variable():
    result = manage("check", HEALTH_CHECK_TIMEOUT="soon")

    assert result.returncode != 0
    assert "HEALTH_CHECK_TIMEOUT must be a number, got 'soon'" in result.stderr


def test_secure_production_settings_pass_the_deploy_check_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **SECURE)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_an_idempotency_window_no_longer_than_the_in_flight_one_is_refused():
    result = manage("check", IDEMPOTENCY_KEY_TTL_SECONDS="120", IDEMPOTENCY_IN_FLIGHT_SECONDS="120")

    assert result.returncode != 0
    assert "IDEMPOTENCY_KEY_TTL_SECONDS must be longer than IDEMPOTENCY_IN_FLIGHT_SECONDS" in result.stderr


def test_without_the_development_packages_production_starts_and_has_no_development_commands():
    checked = manage_without_dev_packages("check", "--deploy", "--fail-level", "WARNING", **SECURE)
    seeded = manage_without_dev_packages("seed_demo")

    assert checked.returncode == 0, checked.stderr
    assert seeded.returncode != 0
    assert "Unknown command: 'seed_demo'" in seeded.stderr
