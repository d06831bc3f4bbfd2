"""Build an engagement whose engineer is onboarded at the double, and move money through it."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from hiring_requests.models import Engagement, HiringRequest
from payments import gateway, services
from payments.errors import PaymentsUnavailable
from payments.models import Milestone, PayoutAccount, Timesheet
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import request_fields


def engagement(*, onboarded: bool = True, client: User | None = None, engineer: User | None = None) -> Engagement:
    """A fixed-price engagement between `client` and `engineer` (new ones when not given)."""
    client = client or ClientFactory.create()
    engineer = engineer or vetted_engineer()
    request = HiringRequest.objects.create(client=client, status="hired", **request_fields())
    made = Engagement.objects.create(
        request=request,
        client=client,
        engineer=engineer,
        rate_kind="fixed",
        rate_minor=100_000,
        currency="usd",
        hours_per_week=20,
    )
    if onboarded:
        onboard(engineer)
    return made


def onboard(engineer: User) -> None:
    """The engineer finishes Stripe's onboarding; their payouts are enabled."""
    url = services.payout_onboarding_start(engineer=engineer, return_url="http://127.0.0.1:8000/")
    httpx.get(url, timeout=5)  # the engineer finishes onboarding at "Stripe"
    account = PayoutAccount.objects.get(engineer=engineer)
    services.payout_account_sync(stripe_account_id=account.stripe_account_id)


def milestone(made: Engagement, amount: int = 50_000) -> Milestone:
    return services.milestone_create(
        client=made.client,
        engagement_id=made.pk,
        title="Async worker pool",
        amount_minor=amount,
        due_date=timezone.localdate() + timedelta(days=14),
    )


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


def disputed(run, http_client, made: Engagement, amount: int = 50_000) -> Milestone:
    """A milestone funded, submitted, then disputed by its client: staff settle it."""
    paid = funded(run, http_client, made, amount)
    services.milestone_submit(engineer=made.engineer, milestone_id=paid.pk)
    services.milestone_dispute(user=made.client, milestone_id=paid.pk, reason="half done")
    paid.refresh_from_db()
    return paid


def submitted(run, http_client, made: Engagement, amount: int = 50_000) -> Milestone:
    """A milestone funded and submitted: it waits for the client's review."""
    work = funded(run, http_client, made, amount)
    return services.milestone_submit(engineer=made.engineer, milestone_id=work.pk)


def stripe_mode(run, mode: str, delay: float = 0) -> None:
    """How the Stripe double answers from now on: `normal`, or `late` by `delay` seconds (after doing the work)."""
    httpx.post(f"{run.base}/_test/mode", data={"mode": mode, "delay_seconds": str(delay)}, timeout=5)


def after_a_stale_step() -> datetime:
    """A moment at which a step claimed now counts as abandoned, for the sweep (PAYMENT_STEP_STALE_SECONDS)."""
    return timezone.now() + timedelta(seconds=settings.PAYMENT_STEP_STALE_SECONDS + 1)


def release_times_out(run, http_client, made: Engagement, test_settings) -> Milestone:
    """Stripe makes the Transfer but answers too late: the release step stays claimed."""
    work = submitted(run, http_client, made)
    test_settings.STRIPE_TIMEOUT_SECONDS = 0.3
    test_settings.STRIPE_RETRY_ATTEMPTS = 1
    gateway.reset()
    stripe_mode(run, "late", 1)  # Stripe makes the Transfer at once and answers after we stopped waiting
    with pytest.raises(PaymentsUnavailable):
        services.milestone_approve(client=made.client, milestone_id=work.pk)
    assert len(run.double.objects["transfers"]) == 1
    stripe_mode(run, "normal")
    test_settings.STRIPE_TIMEOUT_SECONDS = 10
    gateway.reset()
    return Milestone.objects.get(pk=work.pk)


# --- hourly engagements -----------------------------------------------------------------------


def hourly_engagement(*, onboarded: bool = True, rate_minor: int = 4_000, hours_per_week: int = 40) -> Engagement:
    """An hourly engagement just hired: its billing waits for the client's card."""
    from payments.services import billing_open

    made = engagement(onboarded=onboarded)
    Engagement.objects.filter(pk=made.pk).update(
        rate_kind="hourly", rate_minor=rate_minor, hours_per_week=hours_per_week
    )
    made.refresh_from_db()
    billing_open(made)
    return made


def save_card(run, http_client, made: Engagement, card: str = "pm_card_visa", *, started_days_ago: int = 28) -> None:
    """The client saves `card` in Stripe.js and Stripe's setup_intent.succeeded arrives.

    `started_days_ago` back-dates the engagement's start, so tests can log earlier weeks.
    """
    from payments.models import HourlyBilling
    from tests.payments.conftest import deliver_webhooks

    setup = services.payment_method_setup(client=made.client, engagement_id=made.pk)
    confirmed = run.client.v1.setup_intents.confirm(setup.setup_intent_id, params={"payment_method": card})
    if confirmed.status == "requires_action":
        httpx.post(f"{run.base}/_test/setup_intents/{confirmed.id}/authenticate", timeout=5)
    deliver_webhooks(run, http_client)
    HourlyBilling.objects.filter(engagement=made).update(started_at=timezone.now() - timedelta(days=started_days_ago))


def last_monday(weeks_ago: int = 1) -> datetime:
    """Monday 00:00 UTC `weeks_ago` weeks before this week's."""
    today = timezone.now().astimezone(UTC).date()
    monday = today - timedelta(days=today.weekday(), weeks=weeks_ago)
    return datetime.combine(monday, datetime.min.time(), tzinfo=UTC)


def closed_week(made: Engagement, minutes: list[int], *, weeks_ago: int = 1) -> Timesheet:
    """A past week with one entry per day of `minutes`, closed and submitted to the client."""
    monday = last_monday(weeks_ago)
    for day, amount in enumerate(minutes):
        services.time_entry_log(
            engineer=made.engineer,
            engagement_id=made.pk,
            started_at=monday + timedelta(days=day, hours=9),
            minutes=amount,
            note=f"day {day + 1}: worker pool",
            now=monday + timedelta(days=6, hours=23),
        )
    services.timesheets_close(now=monday + timedelta(days=7, hours=13))
    return Timesheet.objects.get(engagement=made, week_start=monday.date())
