"""The console's routes: sign-in, campaigns, live view, held ballots, kiosks and results.

Campaign changes go through CampaignStore (the rules of services/domain/campaign_changes.py
and the campaign's history), held ballots through HeldBallots and kiosks through the kiosk
registry: the same code as the admin API. Each action is also one `console_audit` row.
"""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

from services.ingest.console.campaign_pages import (
    campaign_list,
    campaign_page,
    close_now,
    edit_campaign,
    extend,
    history_page,
    live_json,
    new_campaign,
    open_now,
    save_campaign,
    upload_campaign,
)
from services.ingest.console.context import Console, bind
from services.ingest.console.held_pages import decide_held, held_page
from services.ingest.console.kiosk_pages import kiosks_page, register_kiosk, revoke_kiosk
from services.ingest.console.pages import (
    signed_in,
)
from services.ingest.console.result_pages import download, results_page
from services.ingest.console.sessions import ConsoleSessions
from services.ingest.console.sign_in import sign_in, sign_in_page, sign_out
from services.ingest.deps import IngestDeps
from services.ingest.held import HeldBallots
from services.ingest.kiosk.registry import PostgresKioskRegistry

STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


def add_console_routes(app: web.Application, deps: IngestDeps) -> None:
    sessions = ConsoleSessions(deps.pool, admin_token=deps.settings.admin_token)
    console = Console(deps, sessions, HeldBallots(deps.pool), PostgresKioskRegistry(deps.pool))
    page = signed_in(console.sessions, change=False)
    change = signed_in(console.sessions, change=True)
    r = app.router
    r.add_get("/admin", to_console)
    r.add_get("/admin/static/{name}", static)
    r.add_get("/admin/sign-in", sign_in_page)
    r.add_post("/admin/sign-in", bind(sign_in, console))
    r.add_post("/admin/sign-out", change(bind(sign_out, console)))
    r.add_get("/admin/", page(bind(campaign_list, console)))
    r.add_get("/admin/campaigns/new", page(bind(new_campaign, console)))
    r.add_post("/admin/campaigns", change(bind(save_campaign, console)))
    r.add_post("/admin/campaigns/upload", change(bind(upload_campaign, console)))
    r.add_get("/admin/campaigns/{cid}", page(bind(campaign_page, console)))
    r.add_get("/admin/campaigns/{cid}/live.json", page(bind(live_json, console)))
    r.add_get("/admin/campaigns/{cid}/edit", page(bind(edit_campaign, console)))
    r.add_post("/admin/campaigns/{cid}", change(bind(save_campaign, console)))
    r.add_post("/admin/campaigns/{cid}/open", change(bind(open_now, console)))
    r.add_post("/admin/campaigns/{cid}/close", change(bind(close_now, console)))
    r.add_post("/admin/campaigns/{cid}/extend", change(bind(extend, console)))
    r.add_get("/admin/campaigns/{cid}/held", page(bind(held_page, console)))
    r.add_post("/admin/campaigns/{cid}/held", change(bind(decide_held, console)))
    r.add_get("/admin/campaigns/{cid}/history", page(bind(history_page, console)))
    r.add_get("/admin/campaigns/{cid}/results", page(bind(results_page, console)))
    r.add_get("/admin/campaigns/{cid}/snapshots/{which}.{kind}", page(bind(download, console)))
    r.add_get("/admin/kiosks", page(bind(kiosks_page, console)))
    r.add_post("/admin/kiosks", change(bind(register_kiosk, console)))
    r.add_post("/admin/kiosks/{device_id}/revoke", change(bind(revoke_kiosk, console)))


async def to_console(_: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/admin/")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = files("services.ingest.console").joinpath(f"static/{name}").read_bytes()
    return web.Response(body=body, content_type=STATIC[name], headers={"Cache-Control": "no-cache"})
