"""Documents the ingest port serves: the H5 vote page, its QR codes and the OpenAPI document.

The QR code encodes the page's public URL, VOTESTREAM_PUBLIC_BASE_URL + `/vote/{id}`, and
never anything from the request: the code is cached publicly, so a forged Host header would
otherwise reach every voter who scans it after. Ingest refuses to start without the setting
(`votestream up` sets it to its own ingest URL).
"""

from __future__ import annotations

import functools
import io
from importlib.resources import files
from urllib.parse import quote

import segno
from aiohttp import web

from services.domain.errors import SettingsError
from services.ingest.deps import DEPS
from services.ingest.vote_page import render_vote_page
from services.runtime.inlined_page import PAGE_HEADERS

OPENAPI = "openapi.ingest.json"
QR_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def register(app: web.Application) -> None:
    if not app[DEPS].settings.public_base_url:
        raise SettingsError(
            "VOTESTREAM_PUBLIC_BASE_URL is not set: the vote page's QR codes and links need "
            "the address voters reach this service at (e.g. https://vote.example.org)"
        )
    app.router.add_get("/vote/{campaign_id}", vote_page)
    app.router.add_get("/vote/{campaign_id}/qr.svg", qr_code)
    app.router.add_get("/vote/{campaign_id}/qr.png", qr_code)
    app.router.add_get("/openapi.json", openapi_document)


async def vote_page(request: web.Request) -> web.Response:
    """The page; for an unknown campaign the same page with 404 (it then says so itself)."""
    known = await request.app[DEPS].campaigns.find(request.match_info["campaign_id"]) is not None
    return web.Response(
        body=render_vote_page(),
        status=200 if known else 404,
        content_type="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS,
    )


def vote_url(public_base_url: str, campaign_id: str) -> str:
    return f"{public_base_url.rstrip('/')}/vote/{quote(campaign_id, safe='')}"


async def qr_code(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    campaign = await deps.campaigns.require(request.match_info["campaign_id"])
    kind = request.path.rsplit(".", 1)[1]
    base = deps.settings.public_base_url
    assert base is not None  # register() refused to start without it
    return web.Response(
        body=qr_bytes(vote_url(base, campaign.id), kind),
        content_type=QR_TYPES[kind],
        headers={"Cache-Control": "public, max-age=300"},
    )


@functools.lru_cache(maxsize=256)
def qr_bytes(url: str, kind: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind=kind, scale=8, border=4)
    return out.getvalue()


@functools.cache
def openapi_bytes() -> bytes:
    return files("schemas").joinpath(OPENAPI).read_bytes()


async def openapi_document(_: web.Request) -> web.Response:
    return web.Response(body=openapi_bytes(), content_type="application/json")
