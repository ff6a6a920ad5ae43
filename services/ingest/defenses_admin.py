"""The organiser's defence API (Bearer $VOTESTREAM_ADMIN_TOKEN), under /v1/admin/campaigns/{id}:

GET  .../detections?after=&limit=   what the rules found, with the evidence
GET  .../held?rule=&limit=          ballots awaiting a decision (choices and times, no voter)
POST .../held/release               {"ballot_ids": [...] | "rule": name, "actor", "reason"}
POST .../held/reject                the same; the ballots are refused `organiser_rejected`
GET  .../decisions?after=&limit=    the append-only audit of every decision
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web

from services.domain.errors import MalformedError
from services.ingest.admin import require_admin
from services.ingest.deps import DEPS
from services.ingest.held import Decision, HeldBallots
from services.runtime.http import json_response, read_json

MAX_DECISION_BYTES = 512 * 1024
MAX_IDS = 10_000
MAX_PAGE = 1000
HELD = web.AppKey("held_ballots", HeldBallots)
BASE = "/v1/admin/campaigns/{campaign_id}"


def register(app: web.Application) -> None:
    app[HELD] = HeldBallots(app[DEPS].pool)
    app.router.add_get(f"{BASE}/detections", list_detections)
    app.router.add_get(f"{BASE}/held", list_held)
    app.router.add_post(f"{BASE}/held/release", release)
    app.router.add_post(f"{BASE}/held/reject", reject)
    app.router.add_get(f"{BASE}/decisions", list_decisions)


async def _campaign_id(request: web.Request) -> str:
    require_admin(request)
    campaign = await request.app[DEPS].campaigns.require(request.match_info["campaign_id"])
    return campaign.id


async def list_detections(request: web.Request) -> web.Response:
    cid = await _campaign_id(request)
    found = await request.app[HELD].detections(cid, _int(request, "after", 0), _limit(request))
    return json_response({"campaign_id": cid, "detections": found})


async def list_held(request: web.Request) -> web.Response:
    cid = await _campaign_id(request)
    rule = request.query.get("rule")
    held = await request.app[HELD].held(cid, rule, _limit(request))
    return json_response({"campaign_id": cid, "held": held})


async def list_decisions(request: web.Request) -> web.Response:
    cid = await _campaign_id(request)
    done = await request.app[HELD].decisions(cid, _int(request, "after", 0), _limit(request))
    return json_response({"campaign_id": cid, "decisions": done})


async def release(request: web.Request) -> web.Response:
    return await _decide(request, "release")


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, "reject")


async def _decide(request: web.Request, decision: Decision) -> web.Response:
    cid = await _campaign_id(request)
    body = await read_json(request, MAX_DECISION_BYTES)
    actor, reason = _text(body, "actor", 200), _text(body, "reason", 2000)
    ids, rule = _ballot_ids(body.get("ballot_ids")), body.get("rule")
    if (not ids) == (rule is None) or (rule is not None and not isinstance(rule, str)):
        raise MalformedError("give either ballot_ids or rule", code="bad_decision")
    decided = await request.app[HELD].decide(
        cid, decision, actor=actor, reason=reason, ballot_ids=ids, rule=rule
    )
    changed = [str(b) for b in decided.ballot_ids]
    return json_response({"campaign_id": cid, "decision": decision, "ballot_ids": changed})


def _ballot_ids(raw: Any) -> list[UUID]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_IDS:
        raise MalformedError(f"ballot_ids: a list of at most {MAX_IDS}", code="bad_decision")
    try:
        return [UUID(str(item)) for item in raw]
    except ValueError as exc:
        raise MalformedError("ballot_ids must be UUIDs", code="bad_decision") from exc


def _text(body: dict[str, Any], name: str, most: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        raise MalformedError(f"{name}: required text of 1-{most} characters", code="bad_decision")
    return value.strip()


def _int(request: web.Request, name: str, default: int) -> int:
    try:
        return max(0, int(request.query.get(name, default)))
    except ValueError as exc:
        raise MalformedError(f"{name} must be a whole number", code="bad_query") from exc


def _limit(request: web.Request) -> int:
    return min(MAX_PAGE, max(1, _int(request, "limit", 100)))
