"""The console's routes: sign-in, campaigns, live view, held ballots, kiosks and results.

Campaign changes go through CampaignStore (the rules of services/domain/campaign_changes.py
and the campaign's history), held ballots through HeldBallots and kiosks through the kiosk
registry: the same code as the admin API. Each action is also one `console_audit` row.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from uuid import UUID

import aiohttp
import yaml
from aiohttp import web

from services.domain.campaign import CHANNELS, Campaign, parse_campaign
from services.domain.errors import CampaignInvalidError, VotestreamError
from services.ingest.console import exports, reads
from services.ingest.console.forms import (
    FORM_ERROR,
    definition_from_form,
    errors_by_field,
    form_from_campaign,
)
from services.ingest.console.pages import (
    Visit,
    forbidden,
    render,
    set_session_cookie,
    signed_in,
    translator_for,
)
from services.ingest.console.sessions import COOKIE, ConsoleSessions, audit
from services.ingest.console.throttle import FailedSignIns
from services.ingest.deps import IngestDeps
from services.ingest.held import HeldBallots
from services.ingest.kiosk.registry import PostgresKioskRegistry
from services.runtime.http import client_prefix

STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
MAX_UPLOAD = 512 * 1024
EVIDENCE_SHOWN = 3  # detections shown per rule: the latest; the API lists them all
NEW_CAMPAIGN_FORM = {
    "timezone": "Asia/Shanghai",
    "top_n": "10",
    "min_selections": "1",
    "max_selections": "10",
    "per_voter": "1",
    "period": "campaign",
    "channels": list(CHANNELS),
    "kiosk_grace": "10m",
}


@dataclass
class Console:
    deps: IngestDeps
    sessions: ConsoleSessions
    held: HeldBallots
    kiosks: PostgresKioskRegistry
    failed_sign_ins: FailedSignIns = field(default_factory=FailedSignIns)

    @property
    def secure_cookie(self) -> bool:
        # Secure everywhere voters reach the service over https; `up` serves plain http
        return (self.deps.settings.public_base_url or "").startswith("https://")

    @property
    def publish_base(self) -> str | None:
        s = self.deps.settings
        if s.publish_base_url:
            return s.publish_base_url.rstrip("/")
        return f"http://{s.host}:{s.publish_port}" if s.host.startswith("127.") else None


def add_console_routes(app: web.Application, deps: IngestDeps) -> None:
    sessions = ConsoleSessions(deps.pool, admin_token=deps.settings.admin_token)
    console = Console(deps, sessions, HeldBallots(deps.pool), PostgresKioskRegistry(deps.pool))
    page = signed_in(console.sessions, change=False)
    change = signed_in(console.sessions, change=True)
    r = app.router
    r.add_get("/admin", to_console)
    r.add_get("/admin/static/{name}", static)
    r.add_get("/admin/sign-in", sign_in_page)
    r.add_post("/admin/sign-in", _bind(sign_in, console))
    r.add_post("/admin/sign-out", change(_bind(sign_out, console)))
    r.add_get("/admin/", page(_bind(campaign_list, console)))
    r.add_get("/admin/campaigns/new", page(_bind(new_campaign, console)))
    r.add_post("/admin/campaigns", change(_bind(save_campaign, console)))
    r.add_post("/admin/campaigns/upload", change(_bind(upload_campaign, console)))
    r.add_get("/admin/campaigns/{cid}", page(_bind(campaign_page, console)))
    r.add_get("/admin/campaigns/{cid}/live.json", page(_bind(live_json, console)))
    r.add_get("/admin/campaigns/{cid}/edit", page(_bind(edit_campaign, console)))
    r.add_post("/admin/campaigns/{cid}", change(_bind(save_campaign, console)))
    r.add_post("/admin/campaigns/{cid}/open", change(_bind(open_now, console)))
    r.add_post("/admin/campaigns/{cid}/close", change(_bind(close_now, console)))
    r.add_post("/admin/campaigns/{cid}/extend", change(_bind(extend, console)))
    r.add_get("/admin/campaigns/{cid}/held", page(_bind(held_page, console)))
    r.add_post("/admin/campaigns/{cid}/held", change(_bind(decide_held, console)))
    r.add_get("/admin/campaigns/{cid}/history", page(_bind(history_page, console)))
    r.add_get("/admin/campaigns/{cid}/results", page(_bind(results_page, console)))
    r.add_get("/admin/campaigns/{cid}/snapshots/{which}.{kind}", page(_bind(download, console)))
    r.add_get("/admin/kiosks", page(_bind(kiosks_page, console)))
    r.add_post("/admin/kiosks", change(_bind(register_kiosk, console)))
    r.add_post("/admin/kiosks/{device_id}/revoke", change(_bind(revoke_kiosk, console)))


def _bind(handler: Any, console: Console) -> Any:
    async def bound(visit_or_request: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(console, visit_or_request)
        return response

    return bound


async def to_console(_: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/admin/")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = files("services.ingest.console").joinpath(f"static/{name}").read_bytes()
    return web.Response(body=body, content_type=STATIC[name], headers={"Cache-Control": "no-cache"})


# --- sign-in -------------------------------------------------------------------------------


async def sign_in_page(request: web.Request) -> web.Response:
    problem = "sign_in.expired" if request.query.get("expired") else None
    return render(request, "sign_in.html", problem=problem)


async def sign_in(console: Console, request: web.Request) -> web.StreamResponse:
    network = client_prefix(request)
    wait = console.failed_sign_ins.wait(network)
    if wait:  # checked before the token, so guesses past the limit learn nothing
        response = render(request, "sign_in.html", status=429, problem="sign_in.too_many")
        response.headers["Retry-After"] = str(wait)
        return response
    form = await request.post()
    organiser = str(form.get("organiser", "")).strip()[:80]
    given = str(form.get("token", "")).encode()
    expected = console.deps.settings.admin_token.encode()
    if not organiser or not expected or not hmac.compare_digest(given, expected):
        console.failed_sign_ins.failed(network)
        await audit(console.deps.pool, organiser or "?", "sign_in_failed")
        return render(request, "sign_in.html", status=401, problem="sign_in.failed")
    token, _ = await console.sessions.open(organiser)
    await audit(console.deps.pool, organiser, "sign_in")
    response = web.HTTPSeeOther("/admin/")
    set_session_cookie(response, token, secure=console.secure_cookie)
    return response


async def sign_out(console: Console, visit: Visit) -> web.StreamResponse:
    await console.sessions.close(visit.token)
    await audit(console.deps.pool, visit.session.organiser, "sign_out")
    response = web.HTTPSeeOther("/admin/sign-in")
    response.del_cookie(COOKIE, path="/admin")
    return response


# --- campaigns -----------------------------------------------------------------------------


async def campaign_list(console: Console, visit: Visit) -> web.Response:
    counted = await reads.counted_by_campaign(console.deps.pool)
    sealed = await _sealed(console)
    now = datetime.now(UTC)
    campaigns = [
        {
            "id": c.id,
            "title": c.title,
            "status": "final" if c.id in sealed else c.status(now),
            "opens_at": _local(c, c.opens_at),
            "closes_at": _local(c, c.closes_at),
            "counted": counted.get(c.id, 0),
        }
        for c in await console.deps.campaign_store.all()
    ]
    return render(visit.request, "campaigns.html", visit.session, campaigns=campaigns)


async def new_campaign(console: Console, visit: Visit) -> web.Response:
    return _form_page(visit, dict(NEW_CAMPAIGN_FORM), {}, editing=False)


async def edit_campaign(console: Console, visit: Visit) -> web.Response:
    campaign = await console.deps.campaign_store.get(visit.request.match_info["cid"])
    # say before saving that the counting rules are frozen (the store refuses a change anyway)
    locked = await console.deps.campaign_store.rules_frozen(campaign.id)
    return _form_page(visit, form_from_campaign(campaign), {}, editing=True, locked=locked)


def _form_page(
    visit: Visit,
    form: dict[str, Any],
    errors: dict[str, list[str]],
    *,
    editing: bool,
    status: int = 200,
    locked: bool = False,
) -> web.Response:
    cid = form.get("id", "")
    action = f"/admin/campaigns/{cid}" if editing else "/admin/campaigns"
    return render(
        visit.request,
        "campaign_form.html",
        visit.session,
        status=status,
        form=form,
        errors=errors,
        editing=editing,
        action=action,
        locked=locked,
        channels=CHANNELS,
    )


async def save_campaign(console: Console, visit: Visit) -> web.Response:
    post = await visit.request.post()
    form: dict[str, Any] = {k: post.get(k, "") for k in post if k != "channels"}
    form["channels"] = post.getall("channels", [])
    editing = "cid" in visit.request.match_info
    if editing:
        form["id"] = visit.request.match_info["cid"]
    return await _store(console, visit, definition_from_form(form), form, editing=editing)


async def upload_campaign(console: Console, visit: Visit) -> web.Response:
    post = await visit.request.post()
    upload = post.get("file")
    raw = upload.file.read(MAX_UPLOAD + 1) if isinstance(upload, web.FileField) else b""
    form = dict(NEW_CAMPAIGN_FORM)
    problem = f"YAML: larger than {MAX_UPLOAD // 1024} KiB" if len(raw) > MAX_UPLOAD else None
    try:
        data = yaml.safe_load(raw.decode("utf-8")) if raw and not problem else None
    except (ValueError, yaml.YAMLError) as exc:
        problem = f"YAML: {exc}"
    if problem:
        return _form_page(visit, form, {FORM_ERROR: [problem]}, editing=False, status=422)
    return await _store(console, visit, data, form, editing=False)


async def _store(
    console: Console, visit: Visit, data: Any, form: dict[str, Any], *, editing: bool
) -> web.Response:
    try:
        campaign = await _apply(console, visit, data)
    except CampaignInvalidError as exc:
        return _form_page(visit, form, errors_by_field(exc.errors), editing=editing, status=422)
    except VotestreamError as exc:  # campaign_locked, or sealed
        errors = {FORM_ERROR: [exc.message]}
        return _form_page(visit, form, errors, editing=editing, status=exc.status)
    return _done(campaign.id, "saved")


async def _apply(console: Console, visit: Visit, data: Any) -> Campaign:
    """Stores a definition under the campaign rules, with its history and audit rows."""
    campaign = parse_campaign(data)  # YAML's datetimes are taken as they are
    actor = f"console:{visit.session.organiser}"
    applied = await console.deps.campaign_store.put(campaign, actor=actor)
    await console.deps.campaigns.load()
    await audit(
        console.deps.pool,
        visit.session.organiser,
        "campaign_saved",
        campaign.id,
        {"changes": list(applied.changes)},
    )
    return campaign


async def campaign_page(console: Console, visit: Visit) -> web.Response:
    campaign = await console.deps.campaign_store.get(visit.request.match_info["cid"])
    sealed = campaign.id in await _sealed(console)
    publish = console.publish_base
    return render(
        visit.request,
        "campaign.html",
        visit.session,
        campaign=campaign,
        state="final" if sealed else campaign.status(datetime.now(UTC)),
        opens_at=_local(campaign, campaign.opens_at),
        closes_at=_local(campaign, campaign.closes_at),
        closes_at_local=campaign.closes_at.astimezone(campaign.tz).strftime("%Y-%m-%dT%H:%M"),
        live=await reads.live(console.deps.pool, campaign.id),
        publication_url=f"{publish}/campaigns/{campaign.id}" if publish else None,
        grafana_url=console.deps.settings.grafana_url,
        channel_labels={ch: translator_for(visit.request)(f"channel.{ch}") for ch in CHANNELS},
    )


async def live_json(console: Console, visit: Visit) -> web.Response:
    cid = visit.request.match_info["cid"]
    await console.deps.campaign_store.get(cid)  # 404 for an unknown campaign
    return web.json_response(await reads.live(console.deps.pool, cid), headers=_no_store())


async def open_now(console: Console, visit: Visit) -> web.Response:
    return await _reschedule(console, visit, "opens_at", datetime.now(UTC), "opened")


async def extend(console: Console, visit: Visit) -> web.Response:
    campaign = await console.deps.campaign_store.get(visit.request.match_info["cid"])
    raw = str((await visit.request.post()).get("closes_at", ""))
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return forbidden(visit.request, visit.session, "form.has_errors", status=422)
    if moment.tzinfo is None:  # the form's datetime-local: the campaign's wall-clock time
        moment = moment.replace(tzinfo=campaign.tz)
    return await _reschedule(console, visit, "closes_at", moment, "extended")


async def _reschedule(
    console: Console, visit: Visit, field: str, moment: datetime, done: str
) -> web.Response:
    cid = visit.request.match_info["cid"]
    data = (await console.deps.campaign_store.get(cid)).to_dict()
    data[field] = moment.isoformat()
    await _apply(console, visit, data)  # a refusal is shown by the signed-in guard (pages.py)
    return _done(cid, done)


async def close_now(console: Console, visit: Visit) -> web.Response:
    cid = visit.request.match_info["cid"]
    actor = f"console:{visit.session.organiser}"
    await console.deps.campaign_store.close(cid, datetime.now(UTC), actor=actor)
    await console.deps.campaigns.load()
    await audit(console.deps.pool, visit.session.organiser, "campaign_closed", cid)
    return _done(cid, "closed")


def _done(cid: str, done: str) -> web.Response:
    raise web.HTTPSeeOther(f"/admin/campaigns/{cid}?done={done}")


async def history_page(console: Console, visit: Visit) -> web.Response:
    campaign = await console.deps.campaign_store.get(visit.request.match_info["cid"])
    history = await console.deps.campaign_store.history(campaign.id)
    return render(visit.request, "history.html", visit.session, campaign=campaign, history=history)


async def _sealed(console: Console) -> set[str]:
    rows = await console.deps.pool.fetch("SELECT campaign_id FROM snapshots WHERE final")
    return {r["campaign_id"] for r in rows}


def _local(campaign: Campaign, moment: datetime, *, seconds: bool = False) -> str:
    """A moment as the campaign's organisers read it: in the campaign's time zone."""
    return moment.astimezone(campaign.tz).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def _no_store() -> dict[str, str]:
    return {"Cache-Control": "no-store"}


# --- held ballots --------------------------------------------------------------------------


async def held_page(console: Console, visit: Visit) -> web.Response:
    campaign = await console.deps.campaign_store.get(visit.request.match_info["cid"])
    ballots = await console.held.held(campaign.id, None, 1000)
    detections = await console.held.detections(campaign.id, 0, 500)
    groups: dict[str, dict[str, list[Any]]] = {}
    for ballot in ballots:
        group = groups.setdefault(ballot["rule"], {"ballots": [], "detections": []})
        group["ballots"].append(ballot)
    for detection in reversed(detections):  # the latest first; a few show the pattern
        found = groups.get(detection["rule"])
        if found is not None and len(found["detections"]) < EVIDENCE_SHOWN:
            found["detections"].append(detection)
    return render(visit.request, "held.html", visit.session, campaign=campaign, groups=groups)


async def decide_held(console: Console, visit: Visit) -> web.Response:
    cid = visit.request.match_info["cid"]
    post = await visit.request.post()
    decision = str(post.get("decision", ""))
    reason = str(post.get("reason", "")).strip()[:500]
    try:
        ids = [UUID(str(i)) for i in post.getall("ballot_id", [])]
    except ValueError:
        ids = []
    if decision not in ("release", "reject") or not reason or not ids:
        return forbidden(visit.request, visit.session, "form.has_errors", status=422)
    actor = f"console:{visit.session.organiser}"
    decided = await console.held.decide(
        cid,
        "release" if decision == "release" else "reject",
        actor=actor,
        reason=reason,
        ballot_ids=ids,
    )
    await audit(
        console.deps.pool,
        visit.session.organiser,
        f"held_{decision}",
        cid,
        {"ballots": len(decided.ballot_ids), "reason": reason},
    )
    raise web.HTTPSeeOther(f"/admin/campaigns/{cid}/held?done=saved")


# --- kiosks --------------------------------------------------------------------------------


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


# --- results -------------------------------------------------------------------------------


async def results_page(console: Console, visit: Visit) -> web.Response:
    campaign = await console.deps.campaign_store.get(visit.request.match_info["cid"])
    snapshots = [
        {**s, "as_of": _local(campaign, s["as_of"], seconds=True)}
        for s in await reads.snapshot_list(console.deps.pool, campaign.id)
    ]
    final = next((s for s in snapshots if s["final"]), None)
    public_key, key_url = await _public_key(console)
    return render(
        visit.request,
        "results.html",
        visit.session,
        campaign=campaign,
        snapshots=snapshots,
        final=final,
        public_key=public_key,
        public_key_url=key_url,
    )


async def download(console: Console, visit: Visit) -> web.Response:
    info = visit.request.match_info
    snapshot = await reads.snapshot(console.deps.pool, info["cid"], info["which"])
    if snapshot is None or info["kind"] not in ("json", "csv", "xlsx"):
        raise web.HTTPNotFound()
    name = f"{info['cid']}-{snapshot['seq']}{'-final' if snapshot['final'] else ''}"
    await audit(console.deps.pool, visit.session.organiser, "downloaded", info["cid"],
                {"seq": snapshot["seq"], "kind": info["kind"]})  # fmt: skip
    if info["kind"] == "json":
        return _attachment(web.json_response(snapshot), f"{name}.json")
    public_key, key_url = await _public_key(console)
    key = public_key or key_url
    if info["kind"] == "csv":
        body, mime = exports.ranking_csv(snapshot, key), "text/csv"
    else:
        body = exports.ranking_xlsx(snapshot, key)
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return _attachment(web.Response(body=body, content_type=mime), f"{name}.{info['kind']}")


def _attachment(response: web.Response, filename: str) -> web.Response:
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


async def _public_key(console: Console) -> tuple[str | None, str | None]:
    """The snapshot signing key as the publisher serves it (ingest never holds the private
    key); its address when the publisher cannot be asked."""
    base = console.publish_base
    if base is None:
        return None, None
    url = f"{base}/v1/publish/public-key"
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
            body = await response.json()
            return str(body["public_key"]), url
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        return None, url
