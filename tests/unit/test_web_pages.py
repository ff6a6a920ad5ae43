"""The vote page, its QR codes and the OpenAPI document as the ingest port serves them."""

from __future__ import annotations

import io
import json
from importlib.resources import files
from pathlib import Path

import pytest
import segno

from services.domain.errors import SettingsError
from services.ingest.vote_page import render_vote_page
from services.ingest.wechat.oauth import authorize_url
from tests.unit.web_fakes import PUBLIC_BASE_URL, campaign, web_client


def qr(url: str, kind: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind=kind, scale=8, border=4)
    return out.getvalue()


async def test_the_vote_page_is_served_whole_with_a_strict_policy(tmp_path: Path) -> None:
    async with web_client(tmp_path) as client:
        response = await client.get("/vote/demo")
        body = await response.read()
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert body == render_vote_page()
    policy = response.headers["Content-Security-Policy"]
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy


async def test_the_vote_page_of_an_unknown_campaign_is_a_404_page(tmp_path: Path) -> None:
    async with web_client(tmp_path) as client:
        response = await client.get("/vote/nope")
        assert response.status == 404
        assert await response.read() == render_vote_page()


FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}


async def test_the_qr_codes_encode_the_public_base_url_whatever_the_host_header(
    tmp_path: Path,
) -> None:
    """The QR is cached publicly: a forged Host must not get into what the next voter scans."""
    async with web_client(
        tmp_path, public_base_url=PUBLIC_BASE_URL, wechat_appid="wx-test"
    ) as client:
        svg = await client.get("/vote/demo/qr.svg", headers=FORGED)
        png = await client.get("/vote/demo/qr.png", headers=FORGED)
        assert (svg.status, svg.content_type) == (200, "image/svg+xml")
        assert await svg.read() == qr(f"{PUBLIC_BASE_URL}/vote/demo", "svg")
        assert (png.status, png.content_type) == (200, "image/png")
        assert await png.read() == qr(f"{PUBLIC_BASE_URL}/vote/demo", "png")
        wechat = await client.get("/wechat/qr/demo.svg", headers=FORGED)
        login = authorize_url("wx-test", PUBLIC_BASE_URL, "demo")
        expected = segno.make(login, error="m").svg_inline(scale=4, title=campaign().title)
        assert (wechat.status, await wechat.text()) == (200, expected)


async def test_ingest_refuses_to_start_without_a_public_base_url(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="VOTESTREAM_PUBLIC_BASE_URL"):
        async with web_client(tmp_path, public_base_url=None):
            pass


async def test_the_qr_codes_use_the_public_base_url_when_set(tmp_path: Path) -> None:
    base = "https://vote.zibo.example.cn/"
    async with web_client(tmp_path, public_base_url=base) as client:
        svg = await (await client.get("/vote/demo/qr.svg")).read()
    assert svg == qr("https://vote.zibo.example.cn/vote/demo", "svg")


async def test_no_qr_code_for_an_unknown_campaign(tmp_path: Path) -> None:
    async with web_client(tmp_path) as client:
        response = await client.get("/vote/nope/qr.png")
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "unknown_campaign"


async def test_the_openapi_document_is_served_as_kept_in_schemas(tmp_path: Path) -> None:
    kept = json.loads(files("schemas").joinpath("openapi.ingest.json").read_text("utf-8"))
    async with web_client(tmp_path) as client:
        response = await client.get("/openapi.json")
        assert response.status == 200
        assert await response.json() == kept
