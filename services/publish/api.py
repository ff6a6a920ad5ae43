"""The results API on the publish port: latest, final, history, time series, public key.

Results, final, snapshots and the time series answer with an ETag and Cache-Control, so a
CDN in front absorbs announcement-day reads (caching.py).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from services.domain.errors import MalformedError, NotFoundError
from services.publish.caching import (
    FINAL_CACHE,
    SeriesCache,
    cached_response,
    etag,
    latest_cache,
    series_body,
)
from services.publish.deps import DEPS
from services.publish.signing import ALGORITHM, public_key_text
from services.runtime.campaign_routes import add_campaign_routes
from services.runtime.http import json_response

SERIES = web.AppKey("series_cache", SeriesCache)
MAX_SEQ = 2**31 - 1  # snapshots.seq is a Postgres int: a larger `before` would fail there


def register(app: web.Application) -> None:
    add_campaign_routes(app, app[DEPS].campaigns)
    app[SERIES] = SeriesCache(app[DEPS].store.timeseries)
    app.router.add_get("/v1/campaigns/{campaign_id}/results", latest)
    app.router.add_get("/v1/campaigns/{campaign_id}/results/final", final)
    app.router.add_get("/v1/campaigns/{campaign_id}/snapshots", snapshots)
    app.router.add_get("/v1/campaigns/{campaign_id}/timeseries", timeseries)
    app.router.add_get("/v1/publish/public-key", public_key)


async def latest(request: web.Request) -> web.Response:
    campaign = await request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    snapshot = await request.app[DEPS].store.latest(campaign.id)
    if snapshot is None:
        raise NotFoundError("no snapshot yet", code="no_results")
    cache = latest_cache(request.app[DEPS].settings.snapshot_interval)
    return cached_response(request, orjson.dumps(snapshot), etag(snapshot["hash"]), cache)


async def final(request: web.Request) -> web.Response:
    campaign = await request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    snapshot = await request.app[DEPS].store.latest(campaign.id, final=True)
    if snapshot is None:
        raise NotFoundError("the final result is not sealed yet", code="not_final")
    return cached_response(request, orjson.dumps(snapshot), etag(snapshot["hash"]), FINAL_CACHE)


async def snapshots(request: web.Request) -> web.Response:
    campaign = await request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    try:
        limit = min(int(request.query.get("limit", "100")), 1000)
        before = int(request.query["before"]) if "before" in request.query else None
    except ValueError as exc:
        raise MalformedError("limit and before must be whole numbers", code="bad_query") from exc
    if before is not None and not 1 <= before <= MAX_SEQ:
        raise MalformedError(f"before must be a snapshot seq, 1 to {MAX_SEQ}", code="bad_query")
    items = await request.app[DEPS].store.history(campaign.id, max(limit, 1), before)
    body = orjson.dumps({"campaign_id": campaign.id, "snapshots": items})
    # the page a URL names is fixed by its newest snapshot and how many it holds
    tag = etag(items[0]["hash"], len(items)) if items else etag("none")
    cache = latest_cache(request.app[DEPS].settings.snapshot_interval)
    return cached_response(request, body, tag, cache)


async def timeseries(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    campaign = await deps.campaigns.require(request.match_info["campaign_id"])
    snapshot = await deps.store.latest(campaign.id)
    cache = latest_cache(deps.settings.snapshot_interval)
    if snapshot is None:  # nothing published yet: nothing to key a cached series on
        series = await deps.store.timeseries(campaign.id)
        body = series_body(campaign.id, series)
        return web.Response(
            body=body, content_type="application/json", headers={"Cache-Control": cache}
        )
    body, tag = await request.app[SERIES].get(campaign.id, snapshot["seq"])
    return cached_response(request, body, tag, cache)


async def public_key(request: web.Request) -> web.Response:
    shown = public_key_text(request.app[DEPS].signing_key)
    return json_response({"algorithm": ALGORITHM, "public_key": shown})
