"""The results API on the publish port: latest, final, history, time series, public key."""

from __future__ import annotations

import base64

from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.domain.errors import MalformedError, NotFoundError
from services.publish.deps import DEPS
from services.runtime.campaign_routes import add_campaign_routes
from services.runtime.http import json_response


def register(app: web.Application) -> None:
    add_campaign_routes(app, app[DEPS].campaigns)
    app.router.add_get("/v1/campaigns/{campaign_id}/results", latest)
    app.router.add_get("/v1/campaigns/{campaign_id}/results/final", final)
    app.router.add_get("/v1/campaigns/{campaign_id}/snapshots", snapshots)
    app.router.add_get("/v1/campaigns/{campaign_id}/timeseries", timeseries)
    app.router.add_get("/v1/publish/public-key", public_key)


async def latest(request: web.Request) -> web.Response:
    campaign = request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    snapshot = await request.app[DEPS].store.latest(campaign.id)
    if snapshot is None:
        raise NotFoundError("no snapshot yet", code="no_results")
    return json_response(snapshot)


async def final(request: web.Request) -> web.Response:
    campaign = request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    snapshot = await request.app[DEPS].store.latest(campaign.id, final=True)
    if snapshot is None:
        raise NotFoundError("the final result is not sealed yet", code="not_final")
    return json_response(snapshot)


async def snapshots(request: web.Request) -> web.Response:
    campaign = request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    try:
        limit = min(int(request.query.get("limit", "100")), 1000)
        before = int(request.query["before"]) if "before" in request.query else None
    except ValueError as exc:
        raise MalformedError("limit and before must be whole numbers", code="bad_query") from exc
    items = await request.app[DEPS].store.history(campaign.id, max(limit, 1), before)
    return json_response({"campaign_id": campaign.id, "snapshots": items})


async def timeseries(request: web.Request) -> web.Response:
    campaign = request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    series = await request.app[DEPS].store.timeseries(campaign.id)
    return json_response({"campaign_id": campaign.id, "series": series})


async def public_key(request: web.Request) -> web.Response:
    raw = request.app[DEPS].signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return json_response({"algorithm": "Ed25519", "public_key": base64.b64encode(raw).decode()})
