"""The organiser console in headless Chromium at a phone's viewport, against the whole system:
sign in, create a campaign from the form (fixing the error it shows), open it, watch
loadgen's ballots arrive, release the held ones, close it, and download the final ranking as
CSV and XLSX whose numbers equal the sealed final snapshot. Screenshots go to test-output/
for docs/ORGANISERS.md."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from playwright.async_api import Dialog, Download, Page, expect

from tests.support.system import System
from tests.support.waiting import eventually_async

from .drivers import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SHANGHAI = ZoneInfo("Asia/Shanghai")
CANDIDATES = "\n".join(f"n{i} | 候选方案 {i} | 第{i}街道" for i in range(1, 6))
HOLD_FRESH_VOTERS = "rules:\n  - {kind: fresh_voter, action: hold}"


async def sign_in(page: Page, system: System) -> None:
    await page.goto(f"{system.ingest}/admin/")
    await expect(page).to_have_url(re.compile(r"/admin/sign-in$"))
    await page.locator("#organiser").fill("李明")
    await page.locator("#token").fill(system.secret("admin_token"))
    await page.locator("#sign-in").click()
    await expect(page.locator("#new-campaign")).to_be_visible()


async def create_campaign(page: Page, cid: str) -> None:
    tomorrow = datetime.now(SHANGHAI) + timedelta(days=1)
    await page.locator("#new-campaign").click()
    fields = {
        "id": cid,
        "title": "口袋公园命名",
        "organizer": "市园林局",
        "question": "选出你最喜欢的三个名字",
        "opens_at": tomorrow.strftime("%Y-%m-%dT09:00"),
        "closes_at": (tomorrow + timedelta(days=7)).strftime("%Y-%m-%dT18:00"),
        "top_n": "3",
        "max_selections": "30",  # more than the five candidates: the form says so
        "kiosk_grace": "0s",
        "candidates": CANDIDATES,
        "defenses": HOLD_FRESH_VOTERS,
    }
    for name, value in fields.items():
        await page.locator(f"#f-{name}").fill(value)
    await page.locator("#save").click()
    error = page.locator("[data-error-for=max_selections]")
    await expect(error).to_contain_text("5")
    await screenshot(page, "console-form-error")
    await page.locator("#f-max_selections").fill("3")
    await page.locator("#save").click()
    await expect(page.locator("#status")).to_have_text("未开始")


async def run_loadgen(system: System, cid: str, out: Path) -> dict[str, Any]:
    argv = [sys.executable, "-m", "services", "loadgen", "--campaign", cid, "--channels", "web"]
    argv += ["--rate", "40", "--duration", "3s", "--quiet", "--no-check", "--json", str(out)]
    argv += ["--duplicate-rate", "0.1", "--repeat-rate", "0.1", "--invalid-rate", "0"]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=system.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary


async def accept(dialog: Dialog) -> None:
    await dialog.accept()  # the organiser confirms closing the vote


async def downloaded(page: Page, selector: str) -> bytes:
    async with page.expect_download() as info:
        await page.locator(selector).click()
    download: Download = await info.value
    return Path(await download.path()).read_bytes()


async def test_an_organiser_runs_a_campaign_from_the_form_to_the_downloaded_final(
    system: System, phone_page: Page, tmp_path: Path
) -> None:
    page = phone_page
    page.on("dialog", accept)
    cid = f"park-{uuid.uuid4().hex[:8]}"
    await sign_in(page, system)
    await screenshot(page, "console-campaigns")
    await create_campaign(page, cid)

    await page.locator("#open-now").click()
    await expect(page.locator("#status")).to_have_text("进行中")
    summary = await run_loadgen(system, cid, tmp_path / "loadgen.json")
    assert summary["accepted"] > 0
    # Every loadgen voter signed in just now, so the campaign's rule holds each first ballot
    await expect(page.locator("#held")).not_to_have_text("0", timeout=30_000)
    await expect(page.locator("#delay")).to_have_text(re.compile(r"^[0-9.]+秒$"))
    await screenshot(page, "console-live")

    await page.locator("#held-link").click()
    groups = page.locator("form.held-group")
    await expect(groups).to_have_count(1)
    await screenshot(page, "console-held", full_page=False)  # a page per held ballot
    await groups.locator(".select-all").check()
    await groups.locator("input[name=reason]").fill("现场核实为真实居民")
    await groups.locator("button[value=release]").click()
    await expect(page.locator("#no-held")).to_be_visible()

    await page.goto(f"{system.ingest}/admin/campaigns/{cid}/edit")
    await expect(page.locator("#locked")).to_be_visible()  # ballots are counted now
    await page.locator("#f-candidates").fill(CANDIDATES + "\nn6 | 迟到的方案 | 第6街道")
    await page.locator("#save").click()
    await expect(page.locator("#form-problem")).to_contain_text("counting rules are frozen")

    await page.goto(f"{system.ingest}/admin/campaigns/{cid}")
    await expect(page.locator("#held")).to_have_text("0", timeout=30_000)
    await page.locator("#close-now").click()
    await expect(page.locator("#status")).to_have_text(re.compile("已结束|已封存"))

    final = await sealed_final(system, cid)
    assert final["ballots_counted"] == summary["expected_counted"]
    await page.goto(f"{system.ingest}/admin/campaigns/{cid}/results")
    await expect(page.locator("#final")).to_be_visible()
    await screenshot(page, "console-results")
    rows = list(csv.reader(io.StringIO((await downloaded(page, "#csv-final")).decode("utf-8-sig"))))
    book = load_workbook(io.BytesIO(await downloaded(page, "#xlsx-final")))
    sheet = list(book["ranking"].iter_rows(values_only=True))

    expected = {
        c["id"]: (c["rank"], c["votes"], c["by_channel"].get("web", 0)) for c in final["candidates"]
    }
    from_csv = {r[1]: (int(r[0]), int(r[4]), int(r[5])) for r in rows[1:6]}
    from_xlsx = {r[1]: (r[0], r[4], r[5]) for r in sheet[1:]}
    assert sum(votes for _, votes, _ in expected.values()) > 0
    assert from_csv == expected == from_xlsx
    assert ["hash", final["hash"]] in rows


async def sealed_final(system: System, cid: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:

        async def final() -> dict[str, Any] | None:
            response = await http.get(f"{system.publish}/v1/campaigns/{cid}/results/final")
            found: dict[str, Any] | None = response.json() if response.status_code == 200 else None
            return found

        return await eventually_async(final, timeout=90, what="the sealed final")
