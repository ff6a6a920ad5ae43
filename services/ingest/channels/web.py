"""The web channel: ballots cast with a voter token from the site's own login or phone login.

Routes: POST /v1/campaigns/{id}/ballots, POST /v1/otp, POST /v1/otp/verify. Rate limits
(ratelimit.py) apply per client IP prefix before anything else, then per voter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.domain.ballot import Ballot, Channel
from services.domain.errors import MalformedError, VotestreamError
from services.ingest.ballots import parse_ballot_id
from services.ingest.deps import DEPS
from services.ingest.otp import PhoneLogin
from services.ingest.ratelimit import WebLimits
from services.ingest.sms import sender_from_settings
from services.ingest.voters import token_voter_key
from services.runtime.correlation import sample_access
from services.runtime.http import client_prefix, json_response, read_json

BALLOTS_ROUTE = "/v1/campaigns/{campaign_id}/ballots"
MAX_BALLOT_BYTES = 8 * 1024
MAX_LOGIN_BYTES = 1024
MAX_IDEMPOTENCY_KEY = 255
# Idempotency-Key values that are not UUIDs name a ballot per campaign and voter.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d3c5e-8f0b-4d7a-9a52-0c7e1b2d4f60")


class InFlight:
    """Ballot ids being cast right now: a retry racing its original waits for the first
    answer (then served from BallotDesk's memory) instead of publishing a second copy."""

    def __init__(self) -> None:
        self._locks: dict[uuid.UUID, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def holding(self, ballot_id: uuid.UUID) -> AsyncIterator[None]:
        lock, users = self._locks.get(ballot_id, (asyncio.Lock(), 0))
        self._locks[ballot_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[ballot_id]
            if users == 1:
                del self._locks[ballot_id]
            else:
                self._locks[ballot_id] = (lock, users - 1)


LIMITS = web.AppKey("web_limits", WebLimits)
LOGIN = web.AppKey("phone_login", PhoneLogin)
IN_FLIGHT = web.AppKey("web_in_flight", InFlight)


def register(app: web.Application) -> None:
    deps = app[DEPS]
    app[LIMITS] = WebLimits.from_settings(deps.settings)
    app[IN_FLIGHT] = InFlight()
    app[LOGIN] = PhoneLogin(
        deps.pool, deps.settings, deps.tokens, sender_from_settings(deps.settings)
    )
    app.router.add_post(BALLOTS_ROUTE, cast_ballot)
    sample_access(app, BALLOTS_ROUTE, deps.settings.access_log_sample)
    app.router.add_post("/v1/otp", send_code)
    app.router.add_post("/v1/otp/verify", verify_code)


async def cast_ballot(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    started = time.perf_counter()
    channel: Channel = "web"
    try:
        limits = request.app[LIMITS]
        limits.per_ip.require(client_prefix(request), "from your network")
        token = deps.tokens.verify(request.headers.get("Authorization"))
        channel = token.channel
        campaign = await deps.campaigns.require(request.match_info["campaign_id"])
        key = token_voter_key(deps.identity_key, campaign.id, token)
        limits.per_voter.require(key, "from this voter")
        body = await read_json(request, MAX_BALLOT_BYTES)
        ballot_id = _ballot_id(body, request.headers.get("Idempotency-Key"), campaign.id, key)
        now = datetime.now(UTC)
        meta: dict[str, Any] = {"ip_prefix": client_prefix(request)}
        if token.issued_at:
            meta["token_iat"] = token.issued_at.isoformat()
        ballot = Ballot(
            ballot_id=ballot_id or uuid.uuid4(),
            campaign_id=campaign.id,
            channel=channel,
            voter_key=key,
            selections=_selections(body),
            cast_at=now,
            received_at=now,
            meta=meta,
        )
        async with request.app[IN_FLIGHT].holding(ballot.ballot_id):
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


def _ballot_id(
    body: dict[str, Any], header: str | None, campaign_id: str, voter_key: str
) -> uuid.UUID | None:
    """The client's ballot_id, from the body or the Idempotency-Key header (both: must agree)."""
    from_body = parse_ballot_id(body.get("ballot_id"))
    if header is None:
        return from_body
    from_header = _idempotency_id(header.strip(), campaign_id, voter_key)
    if from_body is not None and from_body != from_header:
        raise MalformedError(
            "Idempotency-Key and ballot_id name different ballots", code="idempotency_conflict"
        )
    return from_header


def _idempotency_id(key: str, campaign_id: str, voter_key: str) -> uuid.UUID:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise MalformedError(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
            code="bad_idempotency_key",
        )
    try:
        return uuid.UUID(key)
    except ValueError:
        return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{campaign_id}:{voter_key}:{key}")


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


async def send_code(request: web.Request) -> web.Response:
    async with _login_step(request, "send") as body:
        answer = await request.app[LOGIN].send_code(_text(body, "phone"))
    return json_response(answer, status=202)


async def verify_code(request: web.Request) -> web.Response:
    async with _login_step(request, "verify") as body:
        answer = await request.app[LOGIN].verify(_text(body, "phone"), _text(body, "code"))
    return json_response(answer)


@contextlib.asynccontextmanager
async def _login_step(request: web.Request, step: str) -> AsyncIterator[dict[str, Any]]:
    """Limits a login request per network, reads its body, and counts its outcome."""
    outcome = "error"
    try:
        request.app[LIMITS].otp_per_ip.require(
            client_prefix(request), "for phone login from your network"
        )
        yield await read_json(request, MAX_LOGIN_BYTES)
        outcome = "ok"
    except VotestreamError as exc:
        outcome = exc.code  # a fixed set of codes: bounded label values
        raise
    finally:
        request.app[DEPS].metrics.otp_requests.labels(step, outcome).inc()


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedError(f"{name} must be a non-empty string", code=f"bad_{name}")
    return value
