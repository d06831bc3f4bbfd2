"""Staff accounts: the admin login is throttled per address and per account, and needs TOTP in production."""

import pytest
from django.test import Client

from tests.factories import PASSWORD, StaffFactory

pytestmark = pytest.mark.django_db


def admin_login(client: Client, email: str, password: str, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password}, **extra)


def test_brute_force_on_one_account_locks_it_and_then_even_the_right_password_is_refused(settings):
    settings.RATE_LIMIT_ADMIN_LOGIN = "5/900"
    StaffFactory.create(email="staff@vetted.test")
    client = Client()

    wrong = [admin_login(client, "staff@vetted.test", f"guess-{n}").status_code for n in range(5)]
    # Another address (another client), the right password: the account itself is locked.
    right = admin_login(Client(REMOTE_ADDR="192.0.2.50"), "Staff@Vetted.test", PASSWORD)

    assert wrong == [200] * 5  # the login form again, with an error
    assert right.status_code == 429
    assert "Retry-After" in right
    assert "_auth_user_id" not in Client().session


def test_brute_force_from_one_address_over_many_accounts_locks_the_address(settings):
    settings.RATE_LIMIT_ADMIN_LOGIN = "5/900"
    StaffFactory.create(email="real@vetted.test")
    client = Client(REMOTE_ADDR="198.51.100.7")

    for n in range(5):
        admin_login(client, f"nobody{n}@vetted.test", "guess")
    locked = admin_login(client, "real@vetted.test", PASSWORD)
    elsewhere = admin_login(Client(REMOTE_ADDR="198.51.100.8"), "real@vetted.test", PASSWORD)

    assert locked.status_code == 429
    assert elsewhere.status_code == 302  # the account was never attacked; another address logs in


def test_a_success_resets_the_account_s_count(settings):
    settings.RATE_LIMIT_ADMIN_LOGIN = "3/900"
    StaffFactory.create(email="staff@vetted.test")

    def from_address(n: int) -> Client:  # each attempt from its own address: only the account counts
        return Client(REMOTE_ADDR=f"192.0.2.{n}")

    for n in range(2):
        admin_login(from_address(n), "staff@vetted.test", "wrong")
    assert admin_login(from_address(10), "staff@vetted.test", PASSWORD).status_code == 302
    for n in range(2):
        admin_login(from_address(20 + n), "staff@vetted.test", "wrong")

    assert admin_login(from_address(30), "staff@vetted.test", PASSWORD).status_code == 302
