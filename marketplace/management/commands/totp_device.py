"""Give a staff member a TOTP authenticator for the admin's second factor (django-otp).

    python manage.py totp_device staff@example.com

Prints the otpauth:// URI to add to an authenticator app (most can read it from a QR
code made of it). Running it again replaces the member's device.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from marketplace.email_addresses import email_key


class Command(BaseCommand):
    help = "Create (or replace) a staff member's TOTP device and print its otpauth:// URI."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, email: str, **options: Any) -> None:
        user = User.objects.filter(email=email_key(email), is_staff=True, is_active=True).first()
        if user is None:
            raise CommandError(f"No active staff member with the email {email!r}.")
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=True)
        self.stdout.write(device.config_url)
