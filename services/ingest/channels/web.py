"""The web channel: ballots cast with a voter token from the site's own login."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.domain.ballot import Ballot
from services.domain.errors import MalformedError, VotestreamError
from services.ingest.ballots import parse_ballot_id
from services.ingest.voters import token_voter_key
from services.runtime.http import client_prefix, json_response, read_json

MAX_BALLOT_BYTES = 8 * 1024


def register(app: web.Application) -> None:
    app.router.add_post("/v1/campaigns/{campaign_id}/ballots", cast_ballot)


async def cast_ballot(request: web.Request) -> web.Response:
    deps = request.app["deps"]
    started = time.perf_counter()
    channel = "web"
    try:
        token = deps.tokens.verify(request.headers.get("Authorization"))
        channel = token.channel
        campaign = deps.campaigns.require(request.match_info["campaign_id"])
        body = await read_json(request, MAX_BALLOT_BYTES)
        ballot_id = parse_ballot_id(body.get("ballot_id") or request.headers.get("Idempotency-Key"))
        now = datetime.now(UTC)
        meta: dict[str, Any] = {"ip_prefix": client_prefix(request)}
        if token.issued_at:
            meta["token_iat"] = token.issued_at.isoformat()
        ballot = Ballot(
            ballot_id=ballot_id or uuid.uuid4(),
            campaign_id=campaign.id,
            channel=channel,
            voter_key=token_voter_key(deps.identity_key, campaign.id, token),
            selections=_selections(body),
            cast_at=now,
            received_at=now,
            meta=meta,
        )
        answer = await deps.desk.cast(campaign, ballot, client_id=ballot_id is not None)
    except VotestreamError as exc:
        deps.metrics.requests.labels(channel, _outcome(exc)).inc()
        if exc.status in (409, 422):
            deps.metrics.rejections.labels(channel, exc.code).inc()
        raise
    finally:
        deps.metrics.latency.labels(channel).observe(time.perf_counter() - started)
    deps.metrics.requests.labels(channel, "accepted").inc()
    return json_response(answer, status=202)


def _selections(body: dict[str, Any]) -> tuple[str, ...]:
    raw = body.get("selections")
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise MalformedError("selections must be a list of candidate ids", code="bad_selections")
    return tuple(raw)


def _outcome(exc: VotestreamError) -> str:
    if exc.status == 429:
        return "rate_limited"
    if exc.status == 503:
        return "unavailable"
    return "rejected" if exc.status < 500 else "error"
