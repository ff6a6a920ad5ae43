"""The kiosk's own HTTP endpoint (loopback only): the voting screen casts ballots here,
with or without a network, and reads the kiosk's record."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from services.domain.errors import MalformedError
from services.kiosk_agent.identity import voter_ref
from services.kiosk_agent.queue import BallotIdTakenError, KioskQueue
from services.kiosk_agent.uploader import Uploader

QUEUE = web.AppKey("queue", KioskQueue)
UPLOADER = web.AppKey("uploader", Uploader)


def create_local_app(queue: KioskQueue, uploader: Uploader) -> web.Application:
    app = web.Application(client_max_size=16 * 1024)
    app[QUEUE], app[UPLOADER] = queue, uploader
    app.router.add_post("/ballots", cast)
    app.router.add_get("/status", status)
    app.router.add_get("/healthz", healthz)
    return app


async def cast(request: web.Request) -> web.Response:
    """`{"campaign_id", "voter": phone or ID number, "selections", "ballot_id"?}` -> queued."""
    try:
        body = await request.json()
        campaign_id, voter, selections = _fields(body)
        ref = voter_ref(voter)
        ballot_id = str(uuid.UUID(str(body.get("ballot_id") or uuid.uuid4())))
        created = request.app[QUEUE].cast(campaign_id, ref, selections, ballot_id)
    except BallotIdTakenError as exc:
        return _json({"error": {"code": "ballot_id_taken", "message": str(exc)}}, 409)
    except (ValueError, MalformedError) as exc:
        return _json({"error": {"code": "malformed", "message": str(exc)}}, 400)
    request.app[UPLOADER].wake.set()
    return _json({"ballot_id": ballot_id, "status": "queued"}, 201 if created else 200)


def _fields(body: Any) -> tuple[str, str, list[str]]:
    if not isinstance(body, dict):
        raise MalformedError("body must be a JSON object")
    campaign_id, voter, selections = (
        body.get("campaign_id"),
        body.get("voter"),
        body.get("selections"),
    )
    if not isinstance(campaign_id, str) or not isinstance(voter, str):
        raise MalformedError("campaign_id and voter are required")
    if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
        raise MalformedError("selections must be a list of candidate ids")
    return campaign_id, voter, selections


async def healthz(_: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def status(request: web.Request) -> web.Response:
    return _json(request.app[QUEUE].summary())


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)
