"""Results: every snapshot as JSON, and the ranking of the final or latest as CSV and XLSX
with the public key and how to verify.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from services.ingest.console import exports, reads
from services.ingest.console.context import Console
from services.ingest.console.pages import (
    Visit,
    campaign_time,
    render,
)
from services.ingest.console.sessions import audit


async def results_page(console: Console, visit: Visit) -> web.Response:
    campaign = await console.deps.campaign_store.get(visit.request.match_info["cid"])
    snapshots = [
        {**s, "as_of": campaign_time(campaign, s["as_of"], seconds=True)}
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
    except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError):
        return None, url
