"""Live snapshots over Server-Sent Events: `GET /v1/campaigns/{id}/stream`.

Every publish process streams, leader or not. The leader hands each snapshot it seals to the
hub at once (the hub is one of its sinks); every process also follows Postgres for new seqs
of the campaigns someone is watching, so a reader of a non-leader misses nothing either.

Each open stream holds a connection and a queue for as long as its reader stays, so a
process keeps at most VOTESTREAM_SSE_MAX_CONNECTIONS of them: beyond that it answers 503
with a Retry-After spread over RETRY_AFTER_SECONDS (so refused readers do not come back
all at once). The publication page then polls the results, which a CDN can answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from services.domain.errors import UnavailableError
from services.publish.deps import DEPS
from services.publish.hub import SnapshotHub
from services.runtime.db import DB_ERRORS

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 15.0
RETRY_AFTER_SECONDS = (5.0, 30.0)
Newer = Callable[[str, int], Awaitable[list[dict[str, Any]]]]


async def follow(hub: SnapshotHub, newer: Newer, interval: float) -> None:
    """Offers the hub every snapshot sealed by whichever process leads."""
    while True:
        for campaign_id, seq in hub.watched().items():
            try:
                for snapshot in await newer(campaign_id, seq):
                    hub.offer(snapshot)
            except DB_ERRORS as exc:
                log.warning("following snapshots failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)


async def stream(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    campaign = await deps.campaigns.require(request.match_info["campaign_id"])
    hub: SnapshotHub = deps.hub
    if hub.open_streams() >= deps.settings.sse_max_connections:
        deps.metrics.streams_refused.inc()
        raise UnavailableError(
            "too many live streams on this server; poll the results instead",
            retry_after=random.uniform(*RETRY_AFTER_SECONDS),  # noqa: S311 - spread, not secret
            code="too_many_streams",
        )
    queue = hub.subscribe(campaign.id)  # before reading the latest, so nothing falls between
    deps.metrics.streams_open.inc()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies must pass events on at once
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        latest = await deps.store.latest(campaign.id)
        await _relay(response, queue, latest)
    except ConnectionResetError:
        pass  # the reader went away
    finally:
        hub.unsubscribe(campaign.id, queue)
        deps.metrics.streams_open.dec()
    return response


async def _relay(
    response: web.StreamResponse,
    queue: asyncio.Queue[dict[str, Any] | None],
    latest: dict[str, Any] | None,
) -> None:
    sent = 0
    if latest is not None:
        await response.write(_event(latest))
        sent = latest["seq"]
    while True:
        try:
            snapshot = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
        except TimeoutError:
            await response.write(b": keep-alive\n\n")  # finds readers that are gone
            continue
        if snapshot is None:
            return
        if snapshot["seq"] > sent:
            await response.write(_event(snapshot))
            sent = snapshot["seq"]


def _event(snapshot: dict[str, Any]) -> bytes:
    data = orjson.dumps(snapshot)
    return b"id: %d\nevent: snapshot\ndata: %s\n\n" % (snapshot["seq"], data)
