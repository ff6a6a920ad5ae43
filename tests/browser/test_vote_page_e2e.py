"""The H5 vote page in headless Chromium at a phone's viewport against the whole running system:
phone login by SMS code (read from the dev sender's outbox), a ballot cast, the receipt and
the counted fate shown, and the results API counting the vote."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.system import System
from tests.support.waiting import eventually_async

from .drivers import VotePage, screenshot

pytestmark = pytest.mark.browser

PHONE_AS_TYPED = "139 0533 2021"
PHONE = "+8613905332021"
PICKS = ["c01", "c03", "c05"]


async def log_in_by_sms(page: Page, system: System) -> None:
    await page.locator("#phone").fill(PHONE_AS_TYPED)
    await page.locator("#send-code").click()
    await expect(page.locator("#login-status")).to_contain_text("已发送")
    await page.locator("#code").fill(system.sms_code(PHONE))
    await page.locator("#verify").click()
    await expect(page.locator("#login")).to_be_hidden()


async def test_a_voter_logs_in_by_sms_votes_and_the_results_count_it(
    system: System, phone_page: Page
) -> None:
    cid = system.new_campaign()["id"]
    vote = VotePage(phone_page, system.ingest)
    await vote.open(cid)
    await expect(phone_page.locator("[data-candidate]")).to_have_count(25)
    await vote.select(*PICKS)
    await expect(vote.counter).to_contain_text("已选 3/10")

    await vote.submit.click()  # no token yet: the page asks for the phone
    await expect(vote.login).to_be_visible()
    await log_in_by_sms(phone_page, system)
    await vote.submit.click()

    await expect(vote.receipt).to_be_visible()
    ballot_id = await vote.receipt_ballot_id()
    await expect(vote.fate).to_have_attribute("data-status", "counted", timeout=60_000)
    await screenshot(phone_page, "vote-page-e2e-counted")

    async with httpx.AsyncClient(timeout=5) as http:
        fate = (await http.get(f"{system.ingest}/v1/ballots/{ballot_id}")).json()
        assert fate["status"] == "counted"

        async def results() -> dict[str, Any] | None:
            response = await http.get(f"{system.publish}/v1/campaigns/{cid}/results")
            found: dict[str, Any] = response.json()
            return found if response.status_code == 200 and found["ballots_counted"] else None

        snapshot = await eventually_async(results, timeout=30, what="the vote in the results")
    votes = {c["id"]: c["votes"] for c in snapshot["candidates"]}
    assert snapshot["ballots_counted"] == 1
    assert {cid_: n for cid_, n in votes.items() if n} == dict.fromkeys(PICKS, 1)
