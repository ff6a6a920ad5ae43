"""The public campaign reads, served alike on the ingest and the publish port.

A campaign's public history lets anyone match a snapshot's `campaign_hash` to the definition
it was counted under (docs/VERIFYING.md): each row's definition as GET /v1/campaigns/{id}
shows it, whose RFC 8785 SHA-256 is the row's `definition_hash`, chained by hashes anyone can
recompute from the rows. Who made each change stays in the organiser's history (the admin
API), and so do its hashes, which cover the name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.domain.campaign_changes import public_row_hash
from services.runtime.campaigns import CampaignCache
from services.runtime.http import json_response


def add_campaign_routes(app: web.Application, campaigns: CampaignCache) -> None:
    """`GET /v1/campaigns` and `GET /v1/campaigns/{campaign_id}`: each campaign's public view."""

    async def list_campaigns(request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        listed = sorted(campaigns.all(), key=lambda c: c.id)
        return json_response({"campaigns": [c.public_view(now) for c in listed]})

    async def get_campaign(request: web.Request) -> web.Response:
        campaign = await campaigns.require(request.match_info["campaign_id"])
        return json_response(campaign.public_view(datetime.now(UTC)))

    async def campaign_history(request: web.Request) -> web.Response:
        campaign = await campaigns.require(request.match_info["campaign_id"])
        rows = await campaigns.store.history(campaign.id)
        return json_response({"history": public_history(campaign.id, rows)})

    app.router.add_get("/v1/campaigns", list_campaigns)
    app.router.add_get("/v1/campaigns/{campaign_id}", get_campaign)
    app.router.add_get("/v1/campaigns/{campaign_id}/history", campaign_history)


def public_history(campaign_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without who made each change, chained by public_row_hash: every hash shown
    is recomputable from the rows shown, and none covers an organiser's name."""
    public: list[dict[str, Any]] = []
    prev_hash: str | None = None
    for row in rows:
        shown = {
            "seq": row["seq"],
            "changes": list(row["changes"]),
            "changed_at": row["changed_at"],  # as CampaignStore.history gives it: ISO text
            "definition_hash": row["definition_hash"],
        }
        row_hash = public_row_hash(campaign_id=campaign_id, **shown, prev_hash=prev_hash)
        definition = {k: v for k, v in row["definition"].items() if k != "defenses"}
        public.append(
            {**shown, "prev_hash": prev_hash, "row_hash": row_hash, "definition": definition}
        )
        prev_hash = row_hash
    return public
