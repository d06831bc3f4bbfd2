"""An hourly engagement in Chromium, against live processes (server, worker, the Stripe double): the client
saves a card in the Payment Element, the engineer logs a week, the client approves it, the charge goes
through and the week is paid out.

As in tests/payments/test_hourly_live.py, the engineer logs last week, so the test runs alike on any day:
the server keeps last week open for time (an edit grace of GRACE_HOURS), the worker has none, and the
beat's close task, sent to the worker, hands last week to the client at once.
"""

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from playwright.async_api import expect

from hiring_requests.models import Engagement
from payments import services
from payments import tasks as payments_tasks
from payments.models import HourlyBilling, Timesheet
from tests.browser.test_web_story import logged_in
from tests.factories import ClientFactory, HourlyEngagementFactory, PayoutAccountFactory, vetted_engineer
from tests.payments.helpers import last_monday
from tests.payments.live import Double, stripe_double
from tests.processes import asgi_server, celery_worker, free_port, needs_redis

pytestmark = [pytest.mark.live, needs_redis("the worker's webhooks and the close task travel through Redis")]

GRACE_HOURS = 8 * 24


def _hired(double: Double) -> Engagement:
    """An hourly engagement just hired at 40.00 an hour, its engineer able to be paid at the double."""
    client, engineer = ClientFactory.create(full_name="Ada Client"), vetted_engineer(full_name="Grace Hopper")
    made = HourlyEngagementFactory.create(
        client=client, engineer=engineer, request__title="Hourly help", rate_minor=4_000, hours_per_week=40
    )
    services.billing_open(made)
    PayoutAccountFactory.create(engineer=engineer, stripe_account_id=double.onboarded_account())
    return made


@pytest.fixture
def hourly(transactional_db, rubric, tmp_path) -> Iterator[tuple[str, str, Engagement]]:
    port, queue = free_port(), f"web-hourly-{uuid.uuid4().hex[:8]}"
    with stripe_double(log_dir=tmp_path, webhook_url=f"http://127.0.0.1:{port}/api/payments/stripe/webhook") as double:
        shared = {"STRIPE_API_BASE": double.base, "CELERY_QUEUE": queue}
        with (
            celery_worker(queue=queue, log_dir=tmp_path, env={**shared, "TIMESHEET_EDIT_GRACE_HOURS": "0"}),
            asgi_server(
                log_dir=tmp_path, port=port, env={**shared, "TIMESHEET_EDIT_GRACE_HOURS": str(GRACE_HOURS)}
            ) as base,
        ):
            yield base, queue, _hired(double)


async def test_a_week_is_logged_approved_charged_and_paid_in_a_browser(hourly, browser):
    base, queue, engagement = hourly
    clients, client = await logged_in(browser, base, engagement.client)
    engineers, grace = await logged_in(browser, base, engagement.engineer)
    hours = f"/app/engagements/{engagement.pk}/hours"

    # The client saves a card in the Payment Element; the webhook turns billing on.
    await client.goto(f"/app/engagements/{engagement.pk}")
    await client.click("button:has-text('Save a card')")
    await client.get_by_label("Card number").fill("4242 4242 4242 4242")
    await client.click("#pay")
    await client.wait_for_url(re.compile(re.escape(hours) + "$"))
    await expect(client.locator("[data-billing=active]")).to_be_visible()

    # The engagement began two weeks ago; the engineer logs last Tuesday in her time zone.
    await sync_to_async(
        lambda: HourlyBilling.objects.filter(engagement=engagement).update(
            started_at=timezone.now() - timedelta(days=14)
        )
    )()
    tuesday = (last_monday() + timedelta(days=1)).date()
    await grace.goto(hours)
    await grace.fill("#id_day", tuesday.isoformat())
    await grace.fill("#id_start", "09:00")
    await grace.fill("#id_minutes", "440")
    await grace.fill("#id_note", "The worker pool, with backpressure")
    await grace.click("main form.card button[type=submit]")
    await expect(grace.locator(".messages")).to_contain_text("Logged")

    # Monday noon's close, sent to the worker as beat would: the week goes to the client, live on her page.
    await client.goto(hours)
    payments_tasks.timesheets_close.apply_async(queue=queue)
    approve = client.locator("button", has_text="Approve and pay $293.33")
    await expect(approve).to_be_visible()
    await approve.click()
    await expect(client.locator("[data-status=paid]")).to_be_visible()
    await grace.goto(hours)
    await expect(grace.locator("[data-status=paid]")).to_be_visible()

    week = await sync_to_async(lambda: Timesheet.objects.get(engagement=engagement))()
    assert (week.status, week.minutes, week.amount_minor) == ("paid", 440, 29_333)
    await clients.close()
    await engineers.close()
