"""The public campaign reads, served alike on the ingest and the publish port.

A campaign's public history lets anyone match a snapshot's `campaign_hash` to the definition
it was counted under (docs/VERIFYING.md): each row's definition as GET /v1/campaigns/{id}
shows it, whose RFC 8785 SHA-256 is the row's `definition_hash`. Who made each change stays
in the organiser's history (the admin API).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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

    async def campaign_history(request: web.Request) -> web.Response:
        campaign = campaigns.require(request.match_info["campaign_id"])
        rows = await campaigns.store.history(campaign.id)
        return json_response({"history": [_public_row(row) for row in rows]})

    app.router.add_get("/v1/campaigns", list_campaigns)
    app.router.add_get("/v1/campaigns/{campaign_id}", get_campaign)
    app.router.add_get("/v1/campaigns/{campaign_id}/history", campaign_history)


def _public_row(row: dict[str, Any]) -> dict[str, Any]:
    definition = {k: v for k, v in row["definition"].items() if k != "defenses"}
    kept = ("seq", "changes", "changed_at", "definition_hash", "prev_hash", "row_hash")
    return {**{k: row[k] for k in kept}, "definition": definition}
