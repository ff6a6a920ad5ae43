"""Fixtures for the headless-Chromium tests: one browser per session, one fake API per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from .drivers import launch, phone_context
from .fake_api import FakeVotestream, serve

# Counting and snapshots are driven by the test, so anything slower than this is a bug.
expect.set_options(timeout=10_000)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def fake() -> FakeVotestream:
    return FakeVotestream()


@pytest_asyncio.fixture(loop_scope="session")
async def base_url(fake: FakeVotestream) -> AsyncIterator[str]:
    async with serve(fake.app(), close=fake.close_streams) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def page(phone_page: Page, base_url: str) -> Page:
    """A phone-sized page with the fake API serving."""
    return phone_page


@pytest_asyncio.fixture(loop_scope="session")
async def phone_page(browser: Browser) -> AsyncIterator[Page]:
    """A phone-sized page; any uncaught script error fails the test."""
    context = await phone_context(browser)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert not errors, f"script errors on the page: {errors}"
