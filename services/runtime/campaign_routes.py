"""The public campaign reads, served alike on the ingest and the publish port."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from services.runtime.campaigns import CampaignCache
from services.runtime.http import json_response


def add_campaign_routes(app: web.Application, campaigns: CampaignCache) -> None:
    """`GET /v1/campaigns` and `GET /v1/campaigns/{campaign_id}`: each campaign's public view."""

    async def list_campaigns(request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        listed = sorted(campaigns.all(), key=lambda c: c.id)
        return json_response({"campaigns": [c.public_view(now) for c in listed]})

    async def get_campaign(request: web.Request) -> web.Response:
        campaign = campaigns.require(request.match_info["campaign_id"])
        return json_response(campaign.public_view(datetime.now(UTC)))

    app.router.add_get("/v1/campaigns", list_campaigns)
    app.router.add_get("/v1/campaigns/{campaign_id}", get_campaign)
