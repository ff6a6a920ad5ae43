"""What anyone may read on the ingest port: campaigns, and a ballot's fate by its id."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from services.ingest.ballots import parse_ballot_id
from services.ingest.deps import DEPS
from services.runtime.http import json_response


def register(app: web.Application) -> None:
    app.router.add_get("/v1/campaigns", list_campaigns)
    app.router.add_get("/v1/campaigns/{campaign_id}", get_campaign)
    app.router.add_get("/v1/ballots/{ballot_id}", get_ballot)


async def list_campaigns(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    campaigns = sorted(request.app[DEPS].campaigns.all(), key=lambda c: c.id)
    return json_response({"campaigns": [c.public_view(now) for c in campaigns]})


async def get_campaign(request: web.Request) -> web.Response:
    campaign = request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    return json_response(campaign.public_view(datetime.now(UTC)))


async def get_ballot(request: web.Request) -> web.Response:
    ballot_id = parse_ballot_id(request.match_info["ballot_id"])
    assert ballot_id is not None
    return json_response(await request.app[DEPS].desk.fate(ballot_id))
