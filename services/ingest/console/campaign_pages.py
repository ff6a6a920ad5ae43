"""Campaign pages: the list, the form (new, edit, YAML upload), the live view, opening,
closing early, extending, and the history. Changes go through CampaignStore, so the rules of
services/domain/campaign_changes.py and the campaign's history apply as for the admin API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from aiohttp import web

from services.domain.campaign import CHANNELS, Campaign, parse_campaign
from services.domain.errors import CampaignInvalidError, VotestreamError
from services.ingest.console import reads
from services.ingest.console.context import Console
from services.ingest.console.forms import (
    FORM_ERROR,
    definition_from_form,
    errors_by_field,
    form_from_campaign,
)
from services.ingest.console.pages import (
    Visit,
    campaign_time,
    forbidden,
    render,
    translator_for,
)
from services.ingest.console.sessions import audit

MAX_UPLOAD = 512 * 1024
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


async def campaign_list(console: Console, visit: Visit) -> web.Response:
    counted = await reads.counted_by_campaign(console.deps.pool)
    sealed = await _sealed(console)
    now = datetime.now(UTC)
    campaigns = [
        {
            "id": c.id,
            "title": c.title,
            "status": "final" if c.id in sealed else c.status(now),
            "opens_at": campaign_time(c, c.opens_at),
            "closes_at": campaign_time(c, c.closes_at),
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
        opens_at=campaign_time(campaign, campaign.opens_at),
        closes_at=campaign_time(campaign, campaign.closes_at),
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


def _no_store() -> dict[str, str]:
    return {"Cache-Control": "no-store"}
