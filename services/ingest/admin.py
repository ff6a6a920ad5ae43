"""The organiser's API: campaigns in, campaigns closed, their history.
Bearer $VOTESTREAM_ADMIN_TOKEN.

Which changes a campaign may take is decided in services/domain/campaign_changes.py (409
`campaign_locked` otherwise); each accepted one is recorded in the campaign's history.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from aiohttp import web

from services.domain.campaign import parse_campaign
from services.domain.errors import MalformedError, UnauthorizedError
from services.ingest.deps import DEPS
from services.runtime.http import json_response, read_json

MAX_CAMPAIGN_BYTES = 512 * 1024
ACTOR = "admin-api"  # the admin token is shared, so the history can name only the channel


def register(app: web.Application) -> None:
    app.router.add_put("/v1/admin/campaigns/{campaign_id}", put_campaign)
    app.router.add_post("/v1/admin/campaigns/{campaign_id}/close", close_campaign)
    app.router.add_get("/v1/admin/campaigns/{campaign_id}/history", campaign_history)


def require_admin(request: web.Request) -> None:
    expected = f"Bearer {request.app[DEPS].settings.admin_token}".encode()
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        raise UnauthorizedError("admin token required", code="admin_only")


async def put_campaign(request: web.Request) -> web.Response:
    require_admin(request)
    deps = request.app[DEPS]
    body = await read_json(request, MAX_CAMPAIGN_BYTES)
    campaign_id = request.match_info["campaign_id"]
    if body.setdefault("id", campaign_id) != campaign_id:
        raise MalformedError("the body's id differs from the URL's", code="id_mismatch")
    campaign = parse_campaign(body)
    applied = await deps.campaign_store.put(campaign, actor=ACTOR)
    await deps.campaigns.load()
    return json_response(applied.campaign.to_dict())


async def close_campaign(request: web.Request) -> web.Response:
    require_admin(request)
    deps = request.app[DEPS]
    campaign_id = request.match_info["campaign_id"]
    campaign = await deps.campaign_store.close(campaign_id, datetime.now(UTC), actor=ACTOR)
    await deps.campaigns.load()
    return json_response(campaign.to_dict())


async def campaign_history(request: web.Request) -> web.Response:
    """Every recorded change, oldest first: who, when, what, and the chained hashes."""
    require_admin(request)
    deps = request.app[DEPS]
    campaign_id = request.match_info["campaign_id"]
    await deps.campaign_store.get(campaign_id)  # 404 for an unknown campaign
    return json_response({"history": await deps.campaign_store.history(campaign_id)})
