"""The whole story in Chromium, in browser contexts for two staff, a client and an engineer, against live
processes: the ASGI server, a Celery worker and the Stripe double, which serves its stand-in for Stripe.js
and sends signed webhooks. Nothing is done behind the pages' backs but making the two staff accounts."""

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from playwright.async_api import BrowserContext, Page, expect

from payments.models import Milestone
from tests.factories import StaffFactory
from tests.processes import answers, asgi_server, celery_worker, free_port, needs_redis, running, wait_until

pytestmark = [needs_redis("the worker's notifications reach the pages' websockets only through Redis")]

TIMEOUT = 30_000  # ms: generous; the figures that matter are in bench/


@pytest.fixture
def stack(transactional_db, rubric, tmp_path) -> Iterator[str]:
    """The server (base URL yielded), its worker and the Stripe double, which sends webhooks to the server."""
    server_port, stripe_port, queue = free_port(), free_port(), f"web-{uuid.uuid4().hex[:8]}"
    base, stripe_base = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{stripe_port}"
    env = {"STRIPE_API_BASE": stripe_base, "CELERY_QUEUE": queue}
    double = [
        "manage.py",
        "stripe_double",
        "--port",
        str(stripe_port),
        "--webhook-url",
        f"{base}/api/payments/stripe/webhook",
    ]
    with (
        running(double, env={}, log=tmp_path / "stripe.log"),
        celery_worker(queue=queue, log_dir=tmp_path, env=env),
        asgi_server(log_dir=tmp_path, env=env, port=server_port),
    ):
        wait_until(lambda: answers(f"{stripe_base}/v3/"), timeout=30, what="the Stripe double")
        yield base


async def logged_in(browser: Any, base: str, user: Any) -> tuple[BrowserContext, Page]:
    def session_key() -> str:
        client = Client()
        client.force_login(user)
        return str(client.cookies["sessionid"].value)

    context = await browser.new_context(base_url=base)
    context.set_default_timeout(TIMEOUT)
    await context.add_cookies([{"name": "sessionid", "value": await sync_to_async(session_key)(), "url": base}])
    return context, await context.new_page()


async def sign_up(page: Page, role: str, name: str) -> str:
    """Sign up from the landing page; returns the email used."""
    email = f"{name.split(maxsplit=1)[0].lower()}-{uuid.uuid4().hex[:6]}@example.com"
    await page.goto("/")
    await page.click("main >> text=Sign up")
    await page.check(f"input[value={role}]")
    await page.fill("#id_full_name", name)
    await page.fill("#id_email", email)
    await page.fill("#id_password", "a-long-pass-2026")
    await page.click("main button[type=submit]")
    await page.wait_for_url(re.compile(r"/app/$"))
    return email


async def vet_in_the_admin(interviewer: Page, lead: Page, engineer_email: str) -> None:
    """Staff move the application through the rubric in the admin: screening, an interview scored on every
    criterion, and approval by a second person (the interviewer may not approve)."""

    async def act(page: Page, action: str) -> None:
        await page.goto("/admin/vetting/application/")
        row = page.locator("#result_list tr", has_text=engineer_email)
        await row.locator("input.action-select").check()
        await page.select_option("select[name=action]", action)
        await page.click("button[name=index]")

    await act(interviewer, "start_screening")
    await expect(interviewer.locator(".messagelist")).to_contain_text("Done for 1 of 1")
    await act(interviewer, "start_interview")
    await expect(interviewer.locator(".messagelist")).to_contain_text("Done for 1 of 1")
    await interviewer.locator("#result_list tr", has_text=engineer_email).locator("th a").click()
    await interviewer.wait_for_url(re.compile(r"/change/$"))
    await expect(interviewer.locator("input[name$='-value']").first).to_be_visible()
    for value in await interviewer.locator("input[name$='-value'], select[name$='-value']").all():
        tag = await value.evaluate("node => node.tagName")
        await (value.select_option("4") if tag == "SELECT" else value.fill("4"))
    async with interviewer.expect_navigation():
        await interviewer.click("input[name=_continue]")
    await expect(interviewer.locator(".messagelist")).to_contain_text("was changed successfully")
    await expect(interviewer.locator(".messagelist")).not_to_contain_text("not saved")
    await act(lead, "approve")
    await lead.fill("#id_note", "Welcome")
    await lead.click("input[type=submit][value=Approve]")
    await expect(lead.locator(".messagelist")).to_contain_text("Done for 1 of 1")


@pytest.mark.live
async def test_a_client_and_an_engineer_walk_the_whole_flow_in_a_browser(stack, browser):
    # Staff as seed_demo makes them: superusers (the admin checks model permissions).
    interviewer_user, lead_user = await sync_to_async(
        lambda: (StaffFactory.create(is_superuser=True), StaffFactory.create(is_superuser=True))
    )()
    staff, interviewer = await logged_in(browser, stack, interviewer_user)
    leads, lead = await logged_in(browser, stack, lead_user)
    clients = await browser.new_context(base_url=stack)
    clients.set_default_timeout(TIMEOUT)
    client = await clients.new_page()
    engineers = await browser.new_context(base_url=stack)
    engineers.set_default_timeout(TIMEOUT)
    grace = await engineers.new_page()

    # An engineer signs up, says what she does, and applies; staff vet her in the admin.
    grace_email = await sign_up(grace, "engineer", "Grace Hopper")
    await grace.click("text=Profile")
    await grace.fill("#id_headline", "Async Python, in production")
    await grace.fill("#id_skills", "python, asyncio, postgresql")
    await grace.fill("#id_hourly_rate", "90")
    await grace.fill("#id_weekly_hours_available", "40")
    await grace.fill("#id_time_zone", "Europe/London")
    await grace.fill("#id_years_experience", "8")
    await grace.click("main button[type=submit]")
    await expect(grace.locator(".messages")).to_contain_text("Profile saved")
    await grace.click("text=Vetting")
    await grace.fill("#id_statement", "I have run asyncio services with bounded queues in production for years.")
    await grace.click("main button[type=submit]")
    await expect(grace.locator(".rows")).to_contain_text("Submitted")
    await vet_in_the_admin(interviewer, lead, grace_email)
    await grace.reload()
    await expect(grace.locator("main")).to_contain_text("You are vetted")

    # The engineer sets up payouts on Stripe's hosted page and comes back.
    await grace.goto("/app/payouts")
    await grace.click("text=Set up payouts with Stripe")
    await grace.wait_for_url(re.compile(r"/app/payouts$"))
    # The account.updated webhook is the worker's to apply; the open page updates itself when it has.
    await expect(grace.locator("text=Payouts are on")).to_be_visible()

    # The engineer waits on the invitations page; the client signs up and raises a request.
    await grace.goto("/app/invitations")
    await sign_up(client, "client", "Ada Client")
    await client.click("text=Raise a request")
    await client.fill("#id_title", "Async payments service")
    await client.fill("#id_description", "An asyncio service that talks to Stripe, with bounded queues.")
    await client.fill("#id_required_skills", "python, asyncio")
    await client.select_option("#id_budget_kind", "fixed")
    await client.fill("#id_budget", "5000")
    await client.fill("#id_time_zone", "Europe/London")
    await client.fill("#id_start_date", "2099-01-04")
    await client.click("main button[type=submit]")
    await client.wait_for_url(re.compile(r"/app/requests/\d+$"))
    await expect(client.locator("[data-clock-summary]")).to_be_visible()

    # The invitation appears on the engineer's open page without a reload; she accepts.
    invitation = grace.locator("[data-invitation]", has_text="Async payments service")
    await expect(invitation).to_be_visible()
    await invitation.locator("button", has_text="Accept").click()
    await expect(grace.locator(".messages")).to_contain_text("Accepted")

    # The client's page shows her on the shortlist, live; they chat.
    hire = client.locator("button", has_text="Hire Grace Hopper")
    await expect(hire).to_be_visible()
    await client.goto("/app/conversations")
    await client.click("text=Async payments service")
    await grace.goto("/app/conversations")
    await grace.click("text=Async payments service")
    await client.fill("#id_body", "How would you bound concurrency here?")
    await client.click("#chat-form button")
    await expect(grace.locator("#chat li", has_text="How would you bound concurrency here?")).to_be_visible()
    await grace.fill("#id_body", "A semaphore per dependency, timeouts on every call.")
    await grace.click("#chat-form button")
    await expect(client.locator("#chat li", has_text="A semaphore per dependency")).to_be_visible()

    # The client hires, adds a milestone and funds it through the payment step.
    await client.goto("/app/")
    await client.click("main a:has-text('Async payments service')")
    await client.locator("input[name=accept_over_budget]").check()
    await client.click("button:has-text('Hire Grace Hopper')")
    await client.wait_for_url(re.compile(r"/app/engagements/\d+$"))
    engagement_path = client.url.split(stack, 1)[1]
    await client.fill("#id_title", "Worker pool with backpressure")
    await client.fill("#id_amount", "1350")
    await client.fill("#id_due_date", "2099-02-01")
    await client.click("main form.card button[type=submit]")
    await client.click("button:has-text('Fund $1,350.00 into escrow')")
    await client.get_by_label("Card number").fill("4242 4242 4242 4242")
    await client.click("#pay")
    await client.wait_for_url(re.compile(engagement_path + "$"), timeout=TIMEOUT)
    await expect(client.locator(".messages")).to_contain_text("is funded")

    # The engineer submits; the client approves; both see the payment released.
    await grace.goto(engagement_path)
    await grace.click("button:has-text('Submit the work')")
    await expect(client.locator("[data-status=submitted]")).to_be_visible()  # live, on the client's open page
    await client.click("button:has-text('Approve and release the payment')")
    await expect(client.locator("[data-status=released]")).to_be_visible()
    await expect(grace.locator("[data-status=released]")).to_be_visible()
    released = await sync_to_async(lambda: Milestone.objects.get().status)()
    assert released == "released"

    # Both review each other.
    for page, text in ((client, "Bounded every queue."), (grace, "Clear brief, paid on time.")):
        await page.goto(engagement_path)
        await page.click("text=Write your review")
        for select in await page.locator("select").all():
            await select.select_option("5")
        await page.fill("#id_public_text", text)
        await page.click("main button[type=submit]")
        await expect(page.locator(".messages")).to_contain_text("Thank you")
    await grace.goto("/app/reviews")
    await expect(grace.locator("main")).to_contain_text("Bounded every queue.")

    for context in (clients, engineers, staff, leads):
        await context.close()
