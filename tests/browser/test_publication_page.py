"""The publication page in headless Chromium at a phone's viewport, against the fake API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from services.publish.page import render_campaign_page

from .drivers import PublicationPage, screenshot
from .fake_api import FakeVotestream, serve

pytestmark = pytest.mark.browser


def seed(fake: FakeVotestream) -> None:
    """Ballots over three minutes and three channels, with distinct totals for c01..c25."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    channels = ("web", "wechat", "kiosk")
    for i in range(1, 26):
        # candidate i gets i ballots, so the expected order is c25, c24, ..., c01
        for k in range(i):
            fake.cast_direct(
                [f"c{i:02d}"],
                channel=channels[k % 3],
                voter=f"voter-{i}-{k}",
                at=start + timedelta(minutes=k % 3),
            )
    fake.count_pending()


def expected_order(fake: FakeVotestream) -> list[str]:
    return [c["id"] for c in fake.snapshots[-1]["candidates"]]


async def test_bars_follow_the_ranking_and_mark_the_top_n(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    seed(fake)
    snapshot = fake.publish()
    results = PublicationPage(page, base_url)
    await results.open(fake.campaign_id)

    await expect(results.seq).to_have_text("1")
    await expect(results.hash).to_have_text(snapshot["hash"])
    assert await results.order() == [f"c{i:02d}" for i in range(25, 0, -1)]
    votes = await results.votes()
    assert votes == {c["id"]: c["votes"] for c in snapshot["candidates"]}
    await expect(results.top_badges()).to_have_count(10)
    top_rows = page.locator("#bars .bar-row.is-top")
    assert (
        await top_rows.evaluate_all("rows => rows.map(r => r.dataset.candidate)") == snapshot["top"]
    )
    # the cutoff line sits right after the 10th row
    after_tenth = page.locator('#bars [data-candidate="c16"] + li')
    await expect(after_tenth).to_have_class("cutoff")
    await expect(page.locator("#tie-warning")).to_be_hidden()
    await expect(page.locator("#counted")).to_have_text(f"{snapshot['ballots_counted']:,}")
    # per-channel segments add up to the total of each bar
    segments = page.locator('#bars [data-candidate="c25"] rect[data-channel]')
    await expect(segments).to_have_count(3)
    chart = page.locator("#minute-chart")
    await expect(chart).to_have_attribute("data-windows", "3")
    await expect(chart).to_have_attribute("data-total", str(sum(fake.minutes.values())))
    await screenshot(page, "publication-live")


async def test_page_updates_live_when_a_snapshot_is_pushed(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    seed(fake)
    fake.publish()
    results = PublicationPage(page, base_url)
    await results.open(fake.campaign_id)
    await expect(results.status).to_contain_text("实时更新")
    asked = fake.results_requests

    for k in range(30):  # c01 overtakes everyone
        fake.cast_direct(["c01"], channel="kiosk", voter=f"late-{k}")
    fake.count_pending()
    snapshot = fake.publish()

    await expect(results.seq).to_have_text("2")
    await expect(results.hash).to_have_text(snapshot["hash"])
    assert (await results.order())[0] == "c01"
    assert (await results.votes())["c01"] == 31
    assert fake.results_requests == asked, "the update came by polling, not over the stream"


async def test_polling_takes_over_when_the_stream_is_unavailable(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    fake.stream_enabled = False
    fake.publish()
    results = PublicationPage(page, base_url)
    await results.open(fake.campaign_id)
    await expect(results.status).to_contain_text("每 5 秒")
    fake.cast_direct(["c02"], channel="web", voter="v")
    fake.count_pending()
    fake.publish()
    await expect(results.seq).to_have_text("2", timeout=12_000)
    assert (await results.order())[0] == "c02"


async def test_no_results_before_the_first_snapshot_then_the_first_arrives(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    results = PublicationPage(page, base_url)
    await results.open(fake.campaign_id)
    await expect(results.status).to_contain_text("暂无结果")
    await expect(results.bars).to_have_count(0)
    await screenshot(page, "publication-empty")
    await fake.wait_for_streams(1)

    fake.publish()
    await expect(results.bars).to_have_count(25)
    await expect(results.seq).to_have_text("1")


async def test_tie_at_the_cutoff_is_flagged(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    # c01..c09 lead; c10 and c11 share 10th place
    for i in range(1, 12):
        n = 20 - i if i <= 9 else 5
        for k in range(n):
            fake.cast_direct([f"c{i:02d}"], channel="web", voter=f"t-{i}-{k}")
    fake.count_pending()
    snapshot = fake.publish()
    assert snapshot["tie_at_cutoff"]
    results = PublicationPage(page, base_url)
    await results.open(fake.campaign_id)
    await expect(page.locator("#tie-warning")).to_be_visible()
    await expect(page.locator("#tie-warning")).to_contain_text("并列")
    await expect(page.locator("#bars .badge--tie")).to_have_count(2)
    await expect(results.top_badges()).to_have_count(11)
    await screenshot(page, "publication-tie")


async def test_final_state_shows_the_seal_and_how_to_verify(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    seed(fake)
    fake.publish()
    results = PublicationPage(page, base_url)
    await results.open(fake.campaign_id)
    await expect(results.status).to_contain_text("实时更新")

    final = fake.publish(final=True)
    await expect(results.status).to_contain_text("最终")
    await expect(results.status).to_contain_text("已签名封存")
    await expect(results.seq).to_have_text("2")
    await expect(results.hash).to_have_text(final["hash"])
    await expect(page.locator("#signature")).to_have_text(final["signature"])
    await expect(page.locator("#verify")).to_contain_text("votestream verify final.json")
    await expect(page.locator("#public-key-link")).to_have_attribute(
        "href", "/v1/publish/public-key"
    )
    await expect(page.locator("#final-link")).to_be_visible()
    await screenshot(page, "publication-final")

    # The sealed final never changes: the page has let go of the stream.
    fake.publish()  # a write to a closed stream is what lets the fake notice it
    await fake.wait_for_streams(0)
    await expect(results.seq).to_have_text("2")


async def test_static_page_reads_latest_json_beside_it(page: Page, fake: FakeVotestream) -> None:
    seed(fake)
    snapshot = fake.publish()
    app = web.Application()

    async def index(request: web.Request) -> web.Response:
        body = render_campaign_page(static=True, campaign=fake.campaign)
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def latest(request: web.Request) -> web.Response:
        return web.json_response(fake.snapshots[-1])

    app.router.add_get(f"/{fake.campaign_id}/", index)
    app.router.add_get(f"/{fake.campaign_id}/latest.json", latest)
    async with serve(app) as url:
        await page.goto(f"{url}/{fake.campaign_id}/")
        results = PublicationPage(page, url)
        await expect(results.hash).to_have_text(snapshot["hash"])
        await expect(page.locator("#title")).to_have_text(fake.campaign["title"])
        assert await results.order() == expected_order(fake)
        await expect(page.locator("#minutes")).to_be_hidden()  # no timeseries.json here


async def test_static_file_opened_from_disk_shows_the_embedded_snapshot(
    page: Page, fake: FakeVotestream, tmp_path: Path
) -> None:
    seed(fake)
    snapshot = fake.publish(final=True)
    index = tmp_path / "index.html"
    index.write_bytes(render_campaign_page(static=True, campaign=fake.campaign, snapshot=snapshot))
    (tmp_path / "latest.json").write_text(json.dumps(snapshot), "utf-8")
    await page.goto(index.as_uri())
    results = PublicationPage(page, "")
    await expect(results.status).to_contain_text("最终")
    await expect(results.hash).to_have_text(snapshot["hash"])
    assert await results.order() == expected_order(fake)
