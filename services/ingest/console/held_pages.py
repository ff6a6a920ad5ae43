"""Held ballots grouped by the rule that held them, with the latest evidence; release or
reject with a reason, through HeldBallots as the admin API does.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web

from services.ingest.console.context import Console
from services.ingest.console.pages import (
    Visit,
    forbidden,
    render,
)
from services.ingest.console.sessions import audit

EVIDENCE_SHOWN = 3  # detections shown per rule: the latest; the API lists them all


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
