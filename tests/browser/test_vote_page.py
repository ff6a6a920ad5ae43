"""The H5 voting page in headless Chromium at a phone's viewport, against the fake API."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from .drivers import VotePage, screenshot
from .fake_api import FakeVotestream

pytestmark = pytest.mark.browser

TEN = [f"c{i:02d}" for i in range(1, 11)]


async def test_selection_limits_are_enforced_while_choosing(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    vote = VotePage(page, base_url)
    await vote.open(fake.campaign_id)
    await expect(page.locator("#title")).to_have_text(fake.campaign["title"])
    await expect(page.locator("[data-candidate]")).to_have_count(25)
    await expect(vote.counter).to_contain_text("已选 0/10")
    await expect(vote.submit).to_be_disabled()  # below min_selections

    await vote.select("c01")
    await expect(vote.submit).to_be_enabled()
    await vote.select(*TEN[1:])
    await expect(vote.counter).to_contain_text("已选 10/10")
    await expect(vote.candidate("c11")).to_be_disabled()
    # A tap on the 11th row (its label) must not select it.
    await page.locator('label[for="cand-c11"]').click(force=True)
    await expect(vote.candidate("c11")).not_to_be_checked()
    await expect(vote.counter).to_contain_text("已选 10/10")
    await screenshot(page, "vote-at-max")

    await vote.candidate("c05").uncheck()
    await expect(vote.counter).to_contain_text("已选 9/10")
    await expect(vote.candidate("c11")).to_be_enabled()


async def test_phone_login_then_cast_shows_receipt_and_counted_fate(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    vote = VotePage(page, base_url)
    await vote.open(fake.campaign_id)
    await expect(vote.login).to_be_hidden()  # the list comes first; the phone only when needed
    await screenshot(page, "vote-initial")
    await vote.select("c03", "c01", "c25")

    await vote.submit.click()  # not logged in yet: asks for the phone first
    await expect(vote.login).to_be_visible()
    await expect(page.locator("#login-status")).to_contain_text("请先验证手机号")
    await expect(page.locator("#phone")).to_be_focused()
    await screenshot(page, "vote-login")
    assert fake.cast_requests == []

    await vote.log_in("138 0013 8000", fake.otp_code)
    assert fake.otp_sent == ["+8613800138000"]
    await vote.submit.click()

    await expect(vote.receipt).to_be_visible()
    ballot_id = await vote.receipt_ballot_id()
    assert ballot_id in fake.ballots
    await expect(vote.receipt).to_contain_text(fake.ballots[ballot_id].receipt)
    assert fake.cast_requests == [{"selections": ["c03", "c01", "c25"], "ballot_id": ballot_id}]
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ballot_id
    )
    await expect(vote.fate).to_contain_text("待计入")
    await screenshot(page, "vote-receipt-pending")

    fake.count_pending()
    await expect(vote.fate).to_have_text("已计入")
    assert {cid for (cid, _), n in fake.votes.items() if n} == {"c01", "c03", "c25"}
    assert sum(fake.votes.values()) == 3
    await screenshot(page, "vote-counted")


async def test_token_from_wechat_callback_is_kept_and_removed_from_the_address(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    token = fake.issue_token("wechat:o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
    vote = VotePage(page, base_url)
    await vote.open(fake.campaign_id, token=token)
    await expect(vote.login).to_be_hidden()
    assert "token" not in page.url
    assert await page.evaluate("sessionStorage.getItem('votestream.voter_token')") == token

    await page.reload()  # the session survives a reload, as WeChat often does
    await page.locator("[data-candidate]").first.wait_for()
    await expect(vote.login).to_be_hidden()
    await vote.select("c07")
    await vote.submit.click()
    await expect(vote.receipt).to_be_visible()
    assert fake.ballots[await vote.receipt_ballot_id()].voter.startswith("wechat:")


async def test_busy_broker_is_retried_with_the_same_ballot_id_and_counted_once(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    token = fake.issue_token("+8613900139000")
    fake.fail_next_cast(503, "unavailable", retry_after=1)
    vote = VotePage(page, base_url)
    await vote.open(fake.campaign_id, token=token)
    await vote.select("c02", "c04")
    await vote.submit.click()

    await expect(vote.receipt).to_be_visible()
    ids = [body["ballot_id"] for body in fake.cast_requests]
    assert len(ids) == 2 and ids[0] == ids[1] == await vote.receipt_ballot_id()
    fake.count_pending()
    await expect(vote.fate).to_have_text("已计入")
    assert fake.votes[("c02", "web")] == 1 and fake.votes[("c04", "web")] == 1


async def test_network_failure_keeps_the_ballot_id_for_the_manual_retry(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    token = fake.issue_token("+8613700137000")
    vote = VotePage(page, base_url)
    await vote.open(fake.campaign_id, token=token)
    await vote.select("c09")
    cast_url = f"**/v1/campaigns/{fake.campaign_id}/ballots"
    await page.route(cast_url, lambda route: route.abort("connectionreset"))
    await vote.submit.click()
    await expect(vote.message).to_contain_text("网络连接异常")
    await expect(vote.submit).to_have_text("重新提交")
    await expect(vote.candidate("c09")).to_be_disabled()  # the same ballot, not a new one

    await page.unroute(cast_url)
    await vote.submit.click()
    await expect(vote.receipt).to_be_visible()
    assert [b["ballot_id"] for b in fake.cast_requests] == [await vote.receipt_ballot_id()]


async def test_second_ballot_of_a_voter_is_not_counted_and_says_why(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    token = fake.issue_token("+8613600136000")
    fake.cast_direct(["c01"], channel="wechat", voter="+8613600136000")
    fake.count_pending()
    vote = VotePage(page, base_url)
    await vote.open(fake.campaign_id, token=token)
    await vote.select("c02")
    await vote.submit.click()
    await expect(vote.receipt).to_be_visible()

    fake.count_pending()
    await expect(vote.fate).to_have_text(re.compile(r"^未计入：.*投票次数限制"))
    assert fake.votes[("c02", "web")] == 0
    await screenshot(page, "vote-rejected")


@pytest.mark.parametrize(
    ("status", "code", "shown"),
    [
        (409, "campaign_closed", "投票已结束"),
        (422, "too_many_selections", "最多只能选择 10 项"),
        (429, "rate_limited", "操作过于频繁"),
        (401, "token_expired", "登录已过期"),
    ],
)
async def test_refusals_are_explained_in_chinese(
    page: Page, base_url: str, fake: FakeVotestream, status: int, code: str, shown: str
) -> None:
    token = fake.issue_token("+8613500135000")
    fake.fail_next_cast(status, code, retry_after=30 if status == 429 else None)
    vote = VotePage(page, base_url)
    await vote.open(fake.campaign_id, token=token)
    await vote.select("c01")
    await vote.submit.click()
    await expect(vote.message).to_contain_text(shown)
    await expect(vote.receipt).to_be_hidden()
    assert fake.ballots == {}
    if status == 401:
        await expect(vote.login).to_be_visible()
    if status == 429:
        await expect(vote.submit).to_be_disabled()
        await expect(vote.submit).to_contain_text("秒后再试")


async def test_closed_campaign_cannot_be_voted(
    page: Page, base_url: str, fake: FakeVotestream
) -> None:
    fake.campaign["status"] = "closed"
    vote = VotePage(page, base_url)
    await vote.open(fake.campaign_id)
    await expect(page.locator("#phase")).to_contain_text("投票已结束")
    await expect(vote.candidate("c01")).to_be_disabled()
    await expect(vote.submit).to_be_disabled()
    await expect(vote.login).to_be_hidden()
