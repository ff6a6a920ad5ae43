"""The publication page in headless Chromium against the whole running system: ballots cast
over the web channel move the bars live over the stream, and closing the campaign turns the
page into the sealed, signed final."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.system import System
from tests.support.waiting import eventually_async

from .drivers import PublicationPage, screenshot

pytestmark = pytest.mark.browser


async def cast(
    http: httpx.AsyncClient, system: System, cid: str, voter: str, picks: list[str]
) -> None:
    response = await http.post(
        f"{system.ingest}/v1/campaigns/{cid}/ballots",
        json={"selections": picks},
        headers={"Authorization": f"Bearer {system.voter_token(voter)}"},
    )
    assert response.status_code == 202, response.text


async def snapshot_with(
    http: httpx.AsyncClient, system: System, cid: str, counted: int, path: str = "results"
) -> dict[str, Any] | None:
    response = await http.get(f"{system.publish}/v1/campaigns/{cid}/{path}")
    if response.status_code != 200 or response.json()["ballots_counted"] < counted:
        return None
    found: dict[str, Any] = response.json()
    return found


async def test_the_page_follows_live_ballots_and_shows_the_sealed_final(
    system: System, phone_page: Page
) -> None:
    campaign = system.new_campaign(kiosk_grace="1s")
    cid = campaign["id"]
    async with httpx.AsyncClient(timeout=10) as http:
        for n, picks in enumerate((["c07", "c02"], ["c07"], ["c02", "c09"])):
            await cast(http, system, cid, f"page-{n}", picks)
        first = await eventually_async(
            lambda: snapshot_with(http, system, cid, 3), what="three ballots published"
        )
        results = PublicationPage(phone_page, system.publish)
        await results.open(cid)
        await expect(phone_page.locator("#title")).to_have_text(campaign["title"])
        await expect(results.status).to_contain_text("实时更新")
        await expect(results.hash).to_have_text(first["hash"])
        await expect(results.bars).to_have_count(len(campaign["candidates"]))
        assert (await results.order())[:2] == ["c02", "c07"]
        assert (await results.votes())["c07"] == 2
        polled: list[str] = []
        phone_page.on(
            "request", lambda r: polled.append(r.url) if r.url.endswith("/results") else None
        )

        for n in range(3):  # c09 overtakes everyone while the page is open
            await cast(http, system, cid, f"page-late-{n}", ["c09"])
        live = await eventually_async(
            lambda: snapshot_with(http, system, cid, 6), what="the next snapshot"
        )
        await expect(results.hash).to_have_text(live["hash"])
        assert (await results.order())[0] == "c09"
        assert (await results.votes())["c09"] == 4
        assert polled == [], "the update came over the stream, not by polling"
        # 22 candidates without votes share 4th place: all of them straddle the top-10 cut
        await expect(results.top_badges()).to_have_count(len(live["top"]))
        await expect(phone_page.locator("#tie-warning")).to_be_visible()
        await screenshot(phone_page, "publication-real-live")

        closed = await http.post(
            f"{system.ingest}/v1/admin/campaigns/{cid}/close", headers=system.admin_headers()
        )
        assert closed.status_code == 200, closed.text
        final = await eventually_async(
            lambda: snapshot_with(http, system, cid, 6, "results/final"),
            timeout=60,
            what="the final sealed",
        )
    await expect(results.status).to_contain_text("最终", timeout=20_000)
    await expect(results.hash).to_have_text(final["hash"])
    await expect(phone_page.locator("#signature")).to_have_text(final["signature"])
    await expect(phone_page.locator("#verify")).to_contain_text("votestream verify final.json")
    assert await results.votes() == {c["id"]: c["votes"] for c in final["candidates"]}
    path = await screenshot(phone_page, "publication-real-final")
    assert path.stat().st_size > 10_000
