"""HTTP caching of the results API: ETags from the snapshot chain, 304s, CDN lifetimes.

Every answer is a function of one snapshot (its `hash` names it), so the ETag is that hash
and a reader that has it gets 304 with no body. Lifetimes: the latest results change with
each snapshot, so a CDN may keep them about one VOTESTREAM_SNAPSHOT_INTERVAL; a final result
never changes once sealed, so it is immutable for a year. The per-minute series is a
GROUP BY over every tally row of a campaign: it is computed once per snapshot seq, however
many readers ask (SeriesCache), since tallies change only as counted ballots do and those
reach the readers with the next snapshot anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

FINAL_CACHE = "public, max-age=31536000, immutable"
Read = Callable[[str], Awaitable[list[dict[str, Any]]]]


def latest_cache(snapshot_interval: float) -> str:
    """What a CDN may do with answers that change at the next snapshot."""
    return f"public, max-age={max(1, math.ceil(snapshot_interval))}"


def etag(*parts: object) -> str:
    return '"' + "-".join(str(p) for p in parts) + '"'


def cached_response(request: web.Request, body: bytes, tag: str, cache: str) -> web.Response:
    """The body with its ETag and Cache-Control, or 304 if the reader already holds it."""
    headers = {"ETag": tag, "Cache-Control": cache}
    if _matches(request.headers.get("If-None-Match"), tag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def _matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 weak comparison: `*`, or any listed tag equal once `W/` is dropped."""
    if not if_none_match:
        return False
    listed = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return any(t in ("*", tag) for t in listed)


def series_body(campaign_id: str, series: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"campaign_id": campaign_id, "series": series})


class SeriesCache:
    """Each campaign's per-minute series as (JSON bytes, ETag), read once per snapshot seq;
    readers that arrive while it is being read wait for that one read. The ETag hashes the
    bytes: replicas that read the same seq a moment apart may differ, and say so."""

    def __init__(self, read: Read) -> None:
        self._read = read
        self._entries: dict[str, tuple[int, asyncio.Future[tuple[bytes, str]]]] = {}

    async def get(self, campaign_id: str, seq: int) -> tuple[bytes, str]:
        """The series read at `seq` or later (a newer one cached already is served too)."""
        entry = self._entries.get(campaign_id)
        if entry is None or entry[0] < seq:
            entry = (seq, asyncio.ensure_future(self._load(campaign_id)))
            self._entries[campaign_id] = entry
        try:
            return await asyncio.shield(entry[1])  # one reader going away cancels no read
        except Exception:
            if self._entries.get(campaign_id) is entry:  # the next reader tries again
                del self._entries[campaign_id]
            raise

    async def _load(self, campaign_id: str) -> tuple[bytes, str]:
        body = series_body(campaign_id, await self._read(campaign_id))
        return body, etag("series", hashlib.sha256(body).hexdigest()[:32])
