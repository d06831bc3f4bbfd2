"""Photograph what a newcomer sees: `/`, the API docs, the admin, and every page of the web app at desktop and
phone width (as the demo client and the demo engineer Ada).

`make screenshots` runs this on a throwaway SQLite database under var/screenshots, seeded with
the demo cast; it adds a sample engagement and milestone, serves the project with uvicorn on a
free port, logs in through the admin's own form in chromium, and writes PNGs to docs/screenshots/.
Needs Debian's chromium (or CHROMIUM_PATH) and the dev extras (Playwright).
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User
from accounts.services import demo_password
from dev_tools.chromium import LAUNCH_ARGS, MISSING, chromium_path
from hiring_requests.models import Engagement
from marketplace.proxies import uvicorn_proxy_args
from payments.models import Milestone
from vetting.models import Application

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

VIEWPORT: "ViewportSize" = {"width": 1280, "height": 860}
PHONE: "ViewportSize" = {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sample_milestone() -> Milestone:
    """The demo client's request, raised and matched through the real services: Ada accepts (proposing a rate),
    the client hires Ada and adds a milestone awaiting funding; one chat message each."""
    from conversations.services import message_send
    from hiring_requests import services as hiring
    from payments.models import PayoutAccount
    from payments.services import milestone_create

    client = User.objects.get(email="client@vetted.test")
    ada = User.objects.get(email="ada@vetted.test")
    existing = Milestone.objects.filter(engagement__client=client).first()
    if existing is not None:
        return existing
    draft = hiring.request_create(
        client=client,
        fields={
            "title": "Async payments service",
            "required_skills": ["asyncio", "python"],
            "description": "An asyncio service that talks to Stripe with timeouts, retries and a breaker.",
            "nice_to_have_skills": ["postgresql"],
            "min_level": "mid",
            "budget_kind": "hourly",
            "budget_minor": 10_000,
            "currency": "usd",
            "hours_per_week": 20,
            "expected_weeks": 8,
            "time_zone": "Europe/London",
            "min_overlap_hours": 2,
            "start_date": timezone.localdate() + timedelta(days=7),
        },
    )
    request = hiring.request_raise(client=client, request_id=draft.pk)
    hiring.matching_run(request_id=request.pk)
    invitation = request.invitations.get(engineer=ada)
    hiring.invitation_accept(engineer=ada, invitation_id=invitation.pk, rate_minor=9_500)
    conversation = request.conversations.get(engineer=ada)
    for sender, body in (
        (client, "How would you bound concurrency here?"),
        (ada, "A semaphore per dependency, timeouts on every call."),
    ):
        message_send(sender=sender, conversation_id=conversation.pk, body=body, client_msg_id=None)
    PayoutAccount.objects.update_or_create(engineer=ada, defaults={"payouts_enabled": True})
    engagement = hiring.request_hire(client=client, request_id=request.pk, engineer_id=ada.pk)
    Engagement.objects.filter(pk=engagement.pk).update(rate_kind="fixed")  # milestones, for the pictures
    return milestone_create(
        client=client,
        engagement_id=engagement.pk,
        title="Worker pool with backpressure",
        amount_minor=150_000,
        due_date=timezone.localdate() + timedelta(days=21),
    )


class Command(BaseCommand):
    help = "Write PNGs of /, /api/docs, the admin and the web app's pages into docs/screenshots/ (make screenshots)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--out", default=str(Path(settings.BASE_DIR) / "docs" / "screenshots"))

    def handle(self, *args: Any, out: str, **options: Any) -> None:
        chromium = chromium_path()
        if not chromium:
            raise CommandError(MISSING)
        milestone = _sample_milestone()
        application = Application.objects.order_by("pk").first()
        if application is None:
            raise CommandError("no vetting application: run `manage.py seed_demo` first")
        pages = {
            "landing": "/",
            "api-docs": "/api/docs",
            "admin-milestone": f"/admin/payments/milestone/{milestone.pk}/change/",
            "admin-application": f"/admin/vetting/application/{application.pk}/change/",
        }
        engagement = milestone.engagement_id
        request_id = milestone.engagement.request_id
        self.web_pages = {
            "": {"signup": "/signup", "login": "/login"},
            "client@vetted.test": {
                "client-home": "/app/",
                "client-raise": "/app/requests/new",
                "client-request": f"/app/requests/{request_id}",
                "client-engagement": f"/app/engagements/{engagement}",
                "client-conversations": "/app/conversations",
                "client-notifications": "/app/notifications",
                "client-email": "/app/notifications/email",
                "client-reviews": "/app/reviews",
                "client-account": "/app/account",
            },
            "ada@vetted.test": {
                "engineer-home": "/app/",
                "engineer-invitations": "/app/invitations",
                "engineer-profile": "/app/profile",
                "engineer-vetting": "/app/vetting",
                "engineer-payouts": "/app/payouts",
                "engineer-engagement": f"/app/engagements/{engagement}",
            },
        }
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no outside input
            [
                sys.executable,
                "-m",
                "uvicorn",
                "marketplace.asgi:application",
                "--port",
                str(port),
                *uvicorn_proxy_args(),
            ],
            start_new_session=True,
        )
        Path(out).mkdir(parents=True, exist_ok=True)
        try:
            self._wait_for(base)
            written = asyncio.run(self._shoot(chromium, base, pages, Path(out)))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        for path in written:
            self.stdout.write(f"wrote {path}")

    def _wait_for(self, base: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise CommandError("the server did not start within 30 s")

    async def _shoot(self, chromium: str, base: str, pages: dict[str, str], out: Path) -> list[Path]:
        from playwright.async_api import async_playwright

        written = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
            page = await (await browser.new_context(base_url=base, viewport=VIEWPORT)).new_page()
            await page.goto("/admin/login/")
            written.append(out / "admin-login.png")
            await page.screenshot(path=written[-1])
            await page.fill("#id_username", "staff@vetted.test")
            await page.fill("#id_password", demo_password())
            await page.click("input[type=submit]")
            await page.wait_for_url("**/admin/")
            for name, path in pages.items():
                await page.goto(path)
                if name == "api-docs":
                    await page.locator(".opblock").first.wait_for(timeout=15_000)
                written.append(out / f"{name}.png")
                await page.screenshot(path=written[-1], full_page=name == "landing")
            for who, web_pages in self.web_pages.items():
                for size, viewport in (("desktop", VIEWPORT), ("phone", PHONE)):
                    context = await browser.new_context(base_url=base, viewport=viewport)
                    page = await context.new_page()
                    if who:
                        await page.goto("/login")
                        await page.fill("#id_username", who)
                        await page.fill("#id_password", demo_password())
                        await page.click("main button[type=submit]")
                        await page.wait_for_url("**/app/")
                    for name, path in web_pages.items():
                        await page.goto(path)
                        written.append(out / f"web-{name}-{size}.png")
                        await page.screenshot(path=written[-1], full_page=True)
                    await context.close()
            await browser.close()
        return written
