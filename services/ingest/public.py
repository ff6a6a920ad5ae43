"""What anyone may read on the ingest port: campaigns, and a ballot's fate by its id."""

from __future__ import annotations

from aiohttp import web

from services.ingest.ballots import parse_ballot_id
from services.ingest.deps import DEPS
from services.runtime.campaign_routes import add_campaign_routes
from services.runtime.http import json_response


def register(app: web.Application) -> None:
    add_campaign_routes(app, app[DEPS].campaigns)
    app.router.add_get("/v1/ballots/{ballot_id}", get_ballot)


async def get_ballot(request: web.Request) -> web.Response:
    ballot_id = parse_ballot_id(request.match_info["ballot_id"])
    assert ballot_id is not None
    return json_response(await request.app[DEPS].desk.fate(ballot_id))
