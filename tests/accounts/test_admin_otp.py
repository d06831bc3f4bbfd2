"""In production the admin asks staff for a TOTP code; the demo in development stays one-step."""

import importlib

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import clear_url_caches
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def otp_required(settings):
    settings.ADMIN_REQUIRE_OTP = True
    site_class = admin.site.__class__
    import marketplace.urls

    importlib.reload(marketplace.urls)
    clear_url_caches()
    yield
    admin.site.__class__ = site_class
    settings.ADMIN_REQUIRE_OTP = False
    importlib.reload(marketplace.urls)
    clear_url_caches()


def test_without_a_code_staff_cannot_log_in_when_otp_is_required(otp_required):
    StaffFactory.create(email="staff@vetted.test")

    response = Client().post("/admin/login/?next=/admin/", {"username": "staff@vetted.test", "password": PASSWORD})

    assert response.status_code == 200  # the form again
    assert "_auth_user_id" not in Client().session


def test_with_the_device_s_current_code_staff_get_in(otp_required, capsys):
    staff = StaffFactory.create(email="staff@vetted.test")
    call_command("totp_device", "staff@vetted.test")
    device = TOTPDevice.objects.get(user=staff)
    uri = capsys.readouterr().out

    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    response = Client().post(
        "/admin/login/?next=/admin/",
        {"username": "staff@vetted.test", "password": PASSWORD, "otp_device": device.persistent_id, "otp_token": code},
    )

    assert uri.startswith("otpauth://totp/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_in_development_the_demo_logs_in_with_a_password_alone():
    StaffFactory.create(email="staff@vetted.test")

    response = Client().post("/admin/login/?next=/admin/", {"username": "staff@vetted.test", "password": PASSWORD})

    assert response.status_code == 302
