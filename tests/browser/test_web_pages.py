"""The web app's pages in Chromium: forms show errors by field, others' pages are 404, phone width works, and
axe-core (injected from its npm package) finds no serious or critical violation on any page."""

from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import Browser, Page

from hiring_requests import services as hiring
from hiring_requests.models import HiringRequest, Invitation
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import enable_payouts, raised

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}


async def violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page, as "rule: the first element's selector"."""
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate("async () => (await axe.run(document)).violations")
    return [f"{v['id']}: {v['nodes'][0]['target']}" for v in found if v["impact"] in ("serious", "critical")]


def _world() -> dict[str, Any]:
    engineer = vetted_engineer(full_name="Grace Hopper")
    enable_payouts(engineer)
    owner = ClientFactory.create(full_name="Ada Client")
    request = raised(owner, budget_kind="fixed", budget_minor=5_000_000)
    hiring.matching_run(request_id=request.pk)
    invitation = Invitation.objects.get(engineer=engineer)
    hiring.invitation_accept(engineer=engineer, invitation_id=invitation.pk)
    other = raised(ClientFactory.create())
    engagement = hiring.request_hire(client=owner, request_id=request.pk, engineer_id=engineer.pk)
    conversation = request.conversations.get(engineer=engineer)
    return {
        "engineer": engineer,
        "client": owner,
        "request": request,
        "other": other,
        "engagement": engagement,
        "conversation": conversation,
    }


@pytest.fixture
def world(transactional_db, rubric) -> dict[str, Any]:
    return _world()


@pytest.fixture
async def axe_context(browser: Browser, live_server_url: str) -> Any:
    """A context that lets Playwright inject axe-core despite the pages' Content-Security-Policy."""
    context = await browser.new_context(base_url=live_server_url, bypass_csp=True)
    yield context
    await context.close()


@pytest.mark.skipif(not AXE.exists(), reason="needs node_modules/axe-core: run `make node_modules/.installed`")
async def test_no_page_has_a_serious_accessibility_violation(world, axe_context, live_server_url):
    from tests.browser.conftest import _session_key

    pages = {
        "anonymous": ["/", "/signup", "/login"],
        "client": [
            "/app/",
            "/app/requests/new",
            f"/app/requests/{world['request'].pk}",
            f"/app/engagements/{world['engagement'].pk}",
            "/app/conversations",
            f"/app/conversations/{world['conversation'].pk}",
            "/app/reviews",
            "/app/account",
            "/app/notifications",
            "/app/notifications/email",
        ],
        "engineer": [
            "/app/",
            "/app/invitations",
            f"/app/engagements/{world['engagement'].pk}",
            "/app/profile",
            "/app/vetting",
            "/app/payouts",
        ],
    }
    found: dict[str, list[str]] = {}
    for who, paths in pages.items():
        await axe_context.clear_cookies()
        if who != "anonymous":
            key = await sync_to_async(_session_key)(world[who])
            await axe_context.add_cookies([{"name": "sessionid", "value": key, "url": live_server_url}])
        page = await axe_context.new_page()
        for path in paths:
            answer = await page.goto(path)
            assert answer is not None
            assert answer.status == 200, path
            found[f"{who} {path}"] = await violations(page)
        await page.close()

    assert {path: problems for path, problems in found.items() if problems} == {}


async def test_the_request_form_shows_each_error_next_to_its_field(world, page_as):
    page = await page_as(world["client"])
    await page.goto("/app/requests/new")

    await page.fill("#id_title", "x")
    await page.fill("#id_description", "Build an asyncio service.")
    await page.fill("#id_required_skills", "python")
    await page.fill("#id_budget", "10.005")
    await page.fill("#id_start_date", "2099-01-04")
    async with page.expect_navigation():
        await page.click("main button[type=submit]")

    assert await page.locator("#id_title-error").is_visible()
    assert await page.locator("#id_budget-error").is_visible()
    assert await page.input_value("#id_description") == "Build an asyncio service."  # what was typed is kept
    count = await sync_to_async(HiringRequest.objects.filter(client=world["client"]).count)()
    assert count == 1  # only the one the fixture raised


async def test_another_clients_request_answers_404(world, page_as):
    page = await page_as(world["client"])

    answer = await page.goto(f"/app/requests/{world['other'].pk}")

    assert answer is not None
    assert answer.status == 404


async def test_pages_fit_a_phone(world, browser, live_server_url):
    from tests.browser.conftest import _session_key

    context = await browser.new_context(base_url=live_server_url, viewport=PHONE)
    key = await sync_to_async(_session_key)(world["client"])
    await context.add_cookies([{"name": "sessionid", "value": key, "url": live_server_url}])
    page = await context.new_page()
    widths = {}
    for path in ("/", "/app/", f"/app/requests/{world['request'].pk}", f"/app/engagements/{world['engagement'].pk}"):
        await page.goto(path)
        widths[path] = await page.evaluate("document.documentElement.scrollWidth")
    await context.close()

    assert {path: width for path, width in widths.items() if width > PHONE["width"]} == {}
