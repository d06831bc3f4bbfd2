"""A real browser for page tests: Debian's chromium driven by Playwright, against a live server.

Playwright never downloads a browser here; it launches the system's chromium. Without one,
every test in this folder is skipped with a reason that says what to install.

Reusable pieces:
- `live_server_url`: uvicorn serving the project on a free port, on the test database;
- `browser`: a headless chromium;
- `page`: a fresh anonymous page whose relative URLs go to the live server;
- `page_as`: `await page_as(user)` opens a page already logged in as `user` (session cookie).

Test data is made in sync fixtures or through `sync_to_async`: the tests themselves are async.
"""

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import Client
from playwright.async_api import Browser, Page, async_playwright

from accounts.models import User
from dev_tools.chromium import LAUNCH_ARGS, MISSING, chromium_path
from tests.processes import asgi_server

CHROMIUM = chromium_path()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.live)
            if not CHROMIUM:
                item.add_marker(pytest.mark.skip(reason=MISSING))


@pytest.fixture(autouse=True)
async def _close_thread_connections() -> AsyncIterator[None]:
    """`sync_to_async` work runs on a worker thread whose connection would outlive the test database."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def live_server_url(transactional_db, tmp_path) -> Iterator[str]:
    with asgi_server(log_dir=tmp_path) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, live_server_url: str) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=live_server_url)
    yield await context.new_page()
    await context.close()


def _session_key(user: User) -> str:
    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


@pytest.fixture
def page_as(browser: Browser, live_server_url: str) -> Callable[[User], Awaitable[Page]]:
    async def open_as(user: User) -> Page:
        key = await sync_to_async(_session_key)(user)
        context = await browser.new_context(base_url=live_server_url)
        await context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": key, "url": live_server_url}])
        return await context.new_page()

    return open_as
