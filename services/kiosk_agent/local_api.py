"""The kiosk's own HTTP endpoint (loopback only): the voting screen casts ballots here,
with or without a network, and reads the kiosk's record.

Only the voting screen may cast. A web page shown in the kiosk's browser can reach loopback
too, so every route but /healthz needs:
- the per-install secret (header X-Kiosk-Agent-Secret), written at the agent's first start
  to `local-api.secret` in its data dir with mode 0600: the voting screen reads the file, a
  page in a browser cannot, and a browser cannot send a custom header to another origin
  without a CORS preflight, which this endpoint never grants;
- no foreign Origin: a request with an Origin header not in the agent's allowed origins is
  refused (403), whatever else it carries;
- casts in `Content-Type: application/json` (415 otherwise): an HTML form can post
  text/plain or form data cross-origin without a preflight, never JSON.
"""

from __future__ import annotations

import hmac
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from services.domain.errors import MalformedError
from services.kiosk_agent.identity import Sealer
from services.kiosk_agent.queue import BallotIdTakenError, KioskQueue
from services.kiosk_agent.uploader import Uploader

QUEUE = web.AppKey("queue", KioskQueue)
UPLOADER = web.AppKey("uploader", Uploader)
SEALER = web.AppKey("sealer", Sealer)
SECRET_HEADER = "X-Kiosk-Agent-Secret"  # noqa: S105 (a header name)
SECRET_FILE = "local-api.secret"  # noqa: S105 (a file name)
OPEN_PATHS = frozenset({"/healthz"})  # liveness only: says nothing, takes nothing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def local_api_secret(data_dir: Path) -> str:
    """The install's secret: made once (mode 0600, never overwritten), then read."""
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        secret = secrets.token_urlsafe(32)
        out.write(secret + "\n")
    return secret


def create_local_app(
    queue: KioskQueue,
    uploader: Uploader,
    sealer: Sealer,
    secret: str,
    allowed_origins: frozenset[str] = frozenset(),
) -> web.Application:
    app = web.Application(
        client_max_size=16 * 1024, middlewares=[_only_the_voting_screen(secret, allowed_origins)]
    )
    app[QUEUE], app[UPLOADER], app[SEALER] = queue, uploader, sealer
    app.router.add_post("/ballots", cast)
    app.router.add_get("/status", status)
    app.router.add_get("/healthz", healthz)
    return app


def _only_the_voting_screen(secret: str, allowed_origins: frozenset[str]) -> Any:
    expected = secret.encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in allowed_origins:
            return _error(403, "foreign_origin", "this endpoint is for the voting screen only")
        if request.path in OPEN_PATHS:
            return await handler(request)
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not given or not hmac.compare_digest(given, expected):
            return _error(401, "bad_agent_secret", f"{SECRET_HEADER} is missing or wrong")
        if request.method == "POST" and request.content_type != "application/json":
            return _error(415, "json_required", "send Content-Type: application/json")
        return await handler(request)

    return guard


async def cast(request: web.Request) -> web.Response:
    """`{"campaign_id", "voter": phone or ID number, "selections", "ballot_id"?}` -> queued."""
    try:
        body = await request.json()
        campaign_id, voter, selections = _fields(body)
        ref = request.app[SEALER].voter_ref(campaign_id, voter)
        ballot_id = str(uuid.UUID(str(body.get("ballot_id") or uuid.uuid4())))
        created = request.app[QUEUE].cast(campaign_id, ref, selections, ballot_id)
    except BallotIdTakenError as exc:
        return _error(409, "ballot_id_taken", str(exc))
    except MalformedError as exc:  # bad_phone, bad_id_check_digit, ...: the voter retypes
        return _error(400, exc.code, exc.message)
    except ValueError as exc:
        return _error(400, "malformed", str(exc))
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


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)
