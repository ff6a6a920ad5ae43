"""Kiosk HTTP routes: batch uploads, and the admin API for the device registry."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiohttp import web

from services.domain.errors import MalformedError, UnavailableError, VotestreamError
from services.domain.voter_refs import ALGORITHM, public_key_text, server_sealing_key
from services.ingest.admin import require_admin
from services.ingest.deps import DEPS
from services.ingest.kiosk.batch import parse_batch
from services.ingest.kiosk.ledger import KioskLedger
from services.ingest.kiosk.registry import PostgresKioskRegistry
from services.ingest.kiosk.uploads import KioskUploads
from services.runtime.http import json_response, read_json

UPLOADS = web.AppKey("kiosk_uploads", KioskUploads)
MAX_REGISTRATION_BYTES = 4 * 1024


def register(app: web.Application) -> None:
    deps = app[DEPS]
    registry = PostgresKioskRegistry(deps.pool)
    app[UPLOADS] = KioskUploads(
        registry=registry,
        ledger=KioskLedger(deps.pool),
        desk=deps.desk,
        campaigns=deps.campaigns,
        identity_key=deps.identity_key,
        metrics=deps.metrics,
        sealing_key=server_sealing_key(deps.identity_key),
        at_once=max(1, deps.pool.get_max_size() // 2),
    )
    app.router.add_post("/v1/kiosk/batches", upload_batch)
    app.router.add_get("/v1/kiosk/sealing-key", sealing_key)
    app.router.add_post("/v1/admin/kiosks", register_kiosk)
    app.router.add_get("/v1/admin/kiosks", list_kiosks)
    app.router.add_delete("/v1/admin/kiosks/{device_id}", revoke_kiosk)


async def upload_batch(request: web.Request) -> web.Response:
    uploads = request.app[UPLOADS]
    started = time.perf_counter()
    try:
        body = await request.read()
        now = datetime.now(UTC)
        device_id = await uploads.authenticate(request.headers, body, now)
        answer, replayed = await uploads.take(device_id, parse_batch(body), now)
    except VotestreamError as exc:
        outcome = "unavailable" if isinstance(exc, UnavailableError) else "refused"
        uploads.metrics.kiosk_batches.labels(outcome).inc()
        raise
    finally:
        uploads.metrics.latency.labels("kiosk").observe(time.perf_counter() - started)
    uploads.metrics.kiosk_batches.labels("replayed" if replayed else "accepted").inc()
    return web.Response(body=answer, content_type="application/json")


async def sealing_key(request: web.Request) -> web.Response:
    """The public key kiosks seal voter identities to; its private half never leaves here."""
    public_key = public_key_text(request.app[UPLOADS].sealing_key)
    return json_response({"algorithm": ALGORITHM, "public_key": public_key})


async def register_kiosk(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request, MAX_REGISTRATION_BYTES)
    device_id, public_key = body.get("device_id"), body.get("public_key")
    if not isinstance(device_id, str) or not isinstance(public_key, str):
        raise MalformedError("device_id and public_key (base64) are required", code="bad_kiosk")
    device, created = await request.app[UPLOADS].registry.register(device_id, public_key)
    shown = {"device_id": device.device_id, "public_key": device.public_key, "revoked": False}
    return json_response(shown, status=201 if created else 200)


async def revoke_kiosk(request: web.Request) -> web.Response:
    require_admin(request)
    device = await request.app[UPLOADS].registry.revoke(request.match_info["device_id"])
    revoked_at = device.revoked_at.isoformat() if device.revoked_at else None
    return json_response({"device_id": device.device_id, "revoked": True, "revoked_at": revoked_at})


async def list_kiosks(request: web.Request) -> web.Response:
    require_admin(request)
    return json_response({"kiosks": await request.app[UPLOADS].registry.listing()})
