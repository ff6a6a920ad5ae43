"""Kiosks: register (a pasted public key), list with their last upload and chain, revoke."""

from __future__ import annotations

from aiohttp import web

from services.domain.errors import VotestreamError
from services.ingest.console.context import Console
from services.ingest.console.pages import (
    Visit,
    render,
)
from services.ingest.console.sessions import audit


async def kiosks_page(
    console: Console, visit: Visit, problem: str | None = None, status: int = 200
) -> web.Response:
    devices = await console.kiosks.listing()
    return render(
        visit.request, "kiosks.html", visit.session, status=status, devices=devices, problem=problem
    )


async def register_kiosk(console: Console, visit: Visit) -> web.Response:
    post = await visit.request.post()
    device_id = str(post.get("device_id", "")).strip()
    try:
        await console.kiosks.register(device_id, str(post.get("public_key", "")).strip())
    except VotestreamError as exc:
        return await kiosks_page(console, visit, exc.message, exc.status)
    await audit(console.deps.pool, visit.session.organiser, "kiosk_registered", None,
                {"device_id": device_id})  # fmt: skip
    raise web.HTTPSeeOther("/admin/kiosks?done=kiosk_registered")


async def revoke_kiosk(console: Console, visit: Visit) -> web.Response:
    device_id = visit.request.match_info["device_id"]
    await console.kiosks.revoke(device_id)
    await audit(console.deps.pool, visit.session.organiser, "kiosk_revoked", None,
                {"device_id": device_id})  # fmt: skip
    raise web.HTTPSeeOther("/admin/kiosks?done=kiosk_revoked")
