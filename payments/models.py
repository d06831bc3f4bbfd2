from django.conf import settings
from django.db import models


class PayoutAccount(models.Model):
    """Where an engineer is paid. Hiring requires `payouts_enabled`.

    The Stripe Connect onboarding (issue 6) keeps this current from
    `account.updated`; until then staff set it in admin.
    """

    engineer = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payout_account")
    stripe_account_id = models.CharField(max_length=64, blank=True)
    payouts_enabled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"payout account of {self.engineer_id}"
