"""Engineers' payout accounts: Stripe Connect Express onboarding, kept current from Stripe.

https://docs.stripe.com/connect/express-accounts. Each step is a Stripe call
between short transactions: the account is created under a key derived from the
engineer (`payout-account-<id>`), so a retry or a crash between phases finds the
same account again.
"""

from accounts.models import User
from marketplace.db import atomic_phase
from marketplace.errors import Forbidden
from marketplace.notifications import notify_user
from payments import gateway
from payments.models import PayoutAccount
from payments.services.transitions import blocking


def _account_claim(*, engineer: User) -> PayoutAccount:
    account, _ = PayoutAccount.objects.get_or_create(engineer=engineer)
    return account


def _account_record(*, account_id: int, stripe_account_id: str) -> PayoutAccount:
    # Compare-and-set: the first recorded id wins; Stripe returned the same account to any replay.
    PayoutAccount.objects.filter(pk=account_id, stripe_account_id="").update(stripe_account_id=stripe_account_id)
    return PayoutAccount.objects.get(pk=account_id)


async def apayout_onboarding_start(*, engineer: User, return_url: str) -> str:
    """An Express account for the engineer (made once) and a fresh onboarding link to it (a URL).

    Raises Forbidden for non-engineers, PaymentsUnavailable, PaymentRefused.
    """
    if not engineer.is_engineer:
        raise Forbidden("Only engineers get paid out.")
    account = await atomic_phase(_account_claim)(engineer=engineer)
    if not account.stripe_account_id:
        created = await gateway.create_account(email=engineer.email, key=f"payout-account-{engineer.pk}")
        account = await atomic_phase(_account_record)(account_id=account.pk, stripe_account_id=created.id)
    link = await gateway.create_account_link(
        account_id=account.stripe_account_id, refresh_url=return_url, return_url=return_url
    )
    return str(link.url)


payout_onboarding_start = blocking(apayout_onboarding_start)


def _sync_record(*, stripe_account_id: str, payouts_enabled: bool) -> PayoutAccount | None:
    account = PayoutAccount.objects.select_for_update(of=("self",)).filter(stripe_account_id=stripe_account_id).first()
    if account is None:
        return None
    if account.payouts_enabled != payouts_enabled:
        account.payouts_enabled = payouts_enabled
        account.save(update_fields=["payouts_enabled", "updated_at"])
        notify_user(user_id=account.engineer_id, event="payouts.updated", payload={"payouts_enabled": payouts_enabled})
    return account


async def apayout_account_sync(*, stripe_account_id: str) -> PayoutAccount | None:
    """Read the account from Stripe (never trust an event's copy) and store `payouts_enabled`."""
    remote = await gateway.retrieve_account(stripe_account_id)
    return await atomic_phase(_sync_record)(
        stripe_account_id=stripe_account_id, payouts_enabled=bool(remote.payouts_enabled)
    )


payout_account_sync = blocking(apayout_account_sync)
