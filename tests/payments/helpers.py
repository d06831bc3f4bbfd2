"""Build an engagement whose engineer is onboarded at the double, and move money through it."""

from datetime import timedelta

import httpx
from django.utils import timezone

from hiring_requests.models import Engagement, HiringRequest
from payments import services
from payments.models import Milestone, PayoutAccount
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import request_fields


def engagement(*, onboarded: bool = True) -> Engagement:
    client, engineer = ClientFactory.create(), vetted_engineer()
    request = HiringRequest.objects.create(client=client, status="hired", **request_fields())
    made = Engagement.objects.create(
        request=request, client=client, engineer=engineer, rate_kind="fixed", rate_minor=100_000, currency="usd",
        hours_per_week=20,
    )  # fmt: skip
    if onboarded:
        url = services.payout_onboarding_start(engineer=engineer, return_url="http://127.0.0.1:8000/")
        httpx.get(url, timeout=5)  # the engineer finishes onboarding at "Stripe"
        account = PayoutAccount.objects.get(engineer=engineer)
        services.payout_account_sync(stripe_account_id=account.stripe_account_id)
    return made


def milestone(made: Engagement, amount: int = 50_000) -> Milestone:
    return services.milestone_create(
        client=made.client, engagement_id=made.pk, title="Async worker pool", amount_minor=amount,
        due_date=timezone.localdate() + timedelta(days=14),
    )  # fmt: skip


def pay_at_stripe(run, milestone: Milestone, card: str = "pm_card_visa") -> None:
    """What Stripe.js does in the client's browser with the client secret."""
    run.client.v1.payment_intents.confirm(milestone.payment_intent_id, params={"payment_method": card})


def funded(run, http_client, made: Engagement, amount: int = 50_000) -> Milestone:
    from tests.payments.conftest import deliver_webhooks

    created = milestone(made, amount)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    pay_at_stripe(run, created)
    deliver_webhooks(run, http_client)
    created.refresh_from_db()
    return created
