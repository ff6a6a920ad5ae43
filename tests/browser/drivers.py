"""Page drivers for the browser tests: what a voter or a reader does, by base URL.

The same drivers run against the local fake (tests/browser/fake_api.py) and, later, against
the real services: nothing here knows which server answers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Locator, Page, Playwright, ViewportSize

PHONE_VIEWPORT: ViewportSize = {"width": 390, "height": 844}
# What the WeChat in-app browser on Android sends; the pages must not depend on it.
WECHAT_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 13; V2134A) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 "
    "MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output"


def chromium_path() -> str | None:
    """The Debian chromium (see .ci/install-browser); VOTESTREAM_CHROMIUM overrides it."""
    return os.environ.get("VOTESTREAM_CHROMIUM") or shutil.which("chromium")


async def launch(playwright: Playwright) -> Browser:
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium not found: run .ci/install-browser or set VOTESTREAM_CHROMIUM")
    return await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


async def phone_context(browser: Browser) -> BrowserContext:
    context = await browser.new_context(
        viewport=PHONE_VIEWPORT,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        user_agent=WECHAT_USER_AGENT,
    )
    context.set_default_timeout(10_000)
    return context


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    path = OUTPUT_DIR / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


class VotePage:
    """The H5 voting page at {base_url}/vote/{campaign_id}."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.submit = page.locator("#submit")
        self.counter = page.locator("#counter")
        self.receipt = page.locator("#receipt")
        self.fate = page.locator("#fate")
        self.message = page.locator("#message")
        self.login = page.locator("#login")

    async def open(self, campaign_id: str, *, token: str | None = None) -> None:
        url = f"{self.base_url}/vote/{campaign_id}" + (f"#token={token}" if token else "")
        await self.page.goto(url)
        await self.page.locator("[data-candidate]").first.wait_for()

    def candidate(self, candidate_id: str) -> Locator:
        return self.page.locator(f'input[data-candidate="{candidate_id}"]')

    async def select(self, *candidate_ids: str) -> None:
        for cid in candidate_ids:
            await self.candidate(cid).check()

    async def log_in(self, phone: str, code: str) -> None:
        await self.page.locator("#phone").fill(phone)
        await self.page.locator("#send-code").click()
        await self.page.locator("#login-status").filter(has_text="已发送").wait_for()
        await self.page.locator("#code").fill(code)
        await self.page.locator("#verify").click()
        await self.login.wait_for(state="hidden")

    async def receipt_ballot_id(self) -> str:
        return (await self.page.locator("#receipt-ballot").inner_text()).strip()


class PublicationPage:
    """The publication page at {base_url}/campaigns/{campaign_id} (or any static URL)."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.status = page.locator("#status")
        self.seq = page.locator("#seq")
        self.hash = page.locator("#hash")
        self.bars = page.locator("#bars [data-candidate]")

    async def open(self, campaign_id: str) -> None:
        await self.page.goto(f"{self.base_url}/campaigns/{campaign_id}")

    async def order(self) -> list[str]:
        """Candidate ids in the order the chart shows them."""
        ids: list[str] = await self.bars.evaluate_all(
            "rows => rows.map(r => r.getAttribute('data-candidate'))"
        )
        return ids

    async def votes(self) -> dict[str, int]:
        pairs: list[list[str]] = await self.bars.evaluate_all(
            "rows => rows.map(r => [r.dataset.candidate, r.dataset.votes])"
        )
        return {cid: int(n) for cid, n in pairs}

    def top_badges(self) -> Locator:
        return self.page.locator("#bars .badge--top")
