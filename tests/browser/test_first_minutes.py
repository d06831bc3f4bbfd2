"""What a newcomer sees first, in a real browser: the landing page, the API docs, the admin."""

import httpx
from asgiref.sync import sync_to_async

from tests.factories import MilestoneFactory, StaffFactory


def _operation_count(base: str) -> int:
    schema = httpx.get(f"{base}/api/openapi.json", timeout=10).json()
    methods = {"get", "post", "put", "patch", "delete"}
    return sum(1 for operations in schema["paths"].values() for method in operations if method in methods)


async def test_landing_page_links_to_docs_admin_readiness_and_the_demo(page):
    await page.goto("/")

    hrefs = await page.locator("main a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert {"/api/docs", "/admin/", "/health/ready", "/docs/demo"} <= set(hrefs)
    assert await page.locator("h1").inner_text() == "Vetted"


async def test_api_docs_render_every_operation(page, live_server_url):
    expected = await sync_to_async(_operation_count)(live_server_url)

    await page.goto("/api/docs")
    await page.locator(".opblock").first.wait_for(timeout=15_000)

    assert expected > 30
    assert await page.locator(".opblock").count() == expected


async def test_admin_login_page_loads_its_stylesheet(page):
    await page.goto("/admin/login/")

    loaded = await page.evaluate(
        """() => [...document.styleSheets].some(
            sheet => (sheet.href || '').includes('/static/admin/css/base') && sheet.cssRules.length > 0)"""
    )
    header_colour = await page.locator("#header").evaluate("el => getComputedStyle(el).backgroundColor")
    assert loaded
    # Unstyled, the header has no background at all.
    assert header_colour != "rgba(0, 0, 0, 0)"


def _staff_and_milestone() -> tuple[object, int]:
    staff = StaffFactory.create(is_superuser=True)
    milestone = MilestoneFactory.create(title="Worker pool", amount_minor=150_000)
    return staff, milestone.pk


async def test_staff_see_a_milestones_amount_as_money(rubric, page_as):
    staff, milestone_id = await sync_to_async(_staff_and_milestone)()
    page = await page_as(staff)

    await page.goto(f"/admin/payments/milestone/{milestone_id}/change/")

    assert "$1,500.00" in await page.locator("#content").inner_text()
