"""The results API as a CDN sees it: ETags named by snapshots, 304 for what a reader holds,
short lifetimes for the latest and an immutable final, and the per-minute series read from
Postgres once per snapshot however many readers ask."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from tests.support.campaigns import make_campaign
from tests.support.publish_app import CountingStore, pool_with, publish_client, publisher

NOW = datetime.now(UTC)
CAMPAIGN = make_campaign("cached", candidates=("c1", "c2"), top_n=1, max_selections=1, now=NOW)
API = "/v1/campaigns/cached"


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    async with pool_with(database, CAMPAIGN) as pool:
        yield pool


async def count_votes(pool: asyncpg.Pool, candidate: str, votes: int, partition: int) -> None:
    """What the tally writes for counted ballots (a new row per call)."""
    await pool.execute(
        "INSERT INTO tallies VALUES ('cached', $1, 'web', date_trunc('minute', now()), $2, $3)",
        candidate,
        partition,
        votes,
    )


async def get(
    client: Any, path: str, tag: str | None = None
) -> tuple[int, Mapping[str, str], bytes]:
    """Status, headers (case-insensitive) and body of a GET, with If-None-Match if given."""
    response = await client.get(path, headers={"If-None-Match": tag} if tag else {})
    return response.status, response.headers, await response.read()


async def test_the_latest_results_carry_the_snapshot_etag_and_a_short_lifetime(
    pool: asyncpg.Pool,
) -> None:
    store = CountingStore(pool)
    await count_votes(pool, "c1", 3, 0)
    first = await publisher(store).publish(CAMPAIGN)
    assert first is not None
    async with publish_client(pool, store, snapshot_interval=2.0) as client:
        status, headers, body = await get(client, f"{API}/results")
        assert status == 200 and b'"seq":1' in body
        assert headers["ETag"] == f'"{first["hash"]}"'
        assert headers["Cache-Control"] == "public, max-age=2"
        status, again, body = await get(client, f"{API}/results", headers["ETag"])
        assert (status, body, again["ETag"]) == (304, b"", headers["ETag"])
        assert again["Cache-Control"] == "public, max-age=2"
        weak_list = f'"something-else", W/{headers["ETag"]}'
        assert (await get(client, f"{API}/results", weak_list))[0] == 304
        await count_votes(pool, "c2", 5, 1)
        second = await publisher(store).publish(CAMPAIGN)
        assert second is not None
        status, newer, body = await get(client, f"{API}/results", headers["ETag"])
        assert status == 200 and b'"seq":2' in body
        assert newer["ETag"] == f'"{second["hash"]}"' != headers["ETag"]


async def test_the_history_changes_its_etag_with_each_snapshot(pool: asyncpg.Pool) -> None:
    store = CountingStore(pool)
    await count_votes(pool, "c1", 1, 0)
    await publisher(store).publish(CAMPAIGN)
    async with publish_client(pool, store) as client:
        status, headers, _ = await get(client, f"{API}/snapshots")
        assert status == 200 and headers["Cache-Control"].startswith("public, max-age=")
        assert (await get(client, f"{API}/snapshots", headers["ETag"]))[0] == 304
        await count_votes(pool, "c1", 1, 1)
        await publisher(store).publish(CAMPAIGN)
        assert (await get(client, f"{API}/snapshots", headers["ETag"]))[0] == 200


async def test_the_final_result_is_immutable_for_caches(pool: asyncpg.Pool) -> None:
    store = CountingStore(pool)
    await count_votes(pool, "c1", 2, 0)
    after_close = CAMPAIGN.cutoff + timedelta(seconds=1)
    await pool.execute(
        "INSERT INTO cutoff_marks (campaign_id, source_partition) VALUES ('cached', 0)"
    )
    sealed = await publisher(store, clock=after_close).publish(CAMPAIGN)
    assert sealed is not None and sealed["final"]
    async with publish_client(pool, store) as client:
        status, headers, body = await get(client, f"{API}/results/final")
        assert status == 200 and b'"final":true' in body
        assert headers["ETag"] == f'"{sealed["hash"]}"'
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert (await get(client, f"{API}/results/final", headers["ETag"]))[0] == 304


async def test_the_series_is_read_once_per_snapshot_however_many_ask(pool: asyncpg.Pool) -> None:
    store = CountingStore(pool)
    await count_votes(pool, "c1", 3, 0)
    await publisher(store).publish(CAMPAIGN)
    async with publish_client(pool, store) as client:
        answers = await asyncio.gather(*(get(client, f"{API}/timeseries") for _ in range(20)))
        assert {status for status, _, _ in answers} == {200}
        assert len({body for _, _, body in answers}) == 1 and b'"count":3' in answers[0][2]
        assert store.series_reads == 1
        tag = answers[0][1]["ETag"]
        assert (await get(client, f"{API}/timeseries", tag))[0] == 304
        assert store.series_reads == 1

        await count_votes(pool, "c1", 4, 1)  # counted, but not yet in a snapshot
        assert (await get(client, f"{API}/timeseries", tag))[0] == 304
        await publisher(store).publish(CAMPAIGN)  # the next snapshot brings it
        status, headers, body = await get(client, f"{API}/timeseries", tag)
        assert (status, store.series_reads) == (200, 2)
        assert b'"count":7' in body and headers["ETag"] != tag


async def test_a_history_page_outside_the_seq_range_is_refused_not_a_server_error(
    pool: asyncpg.Pool,
) -> None:
    store = CountingStore(pool)
    for votes in (1, 2):
        await count_votes(pool, "c1", votes, votes)
        await publisher(store).publish(CAMPAIGN)
    async with publish_client(pool, store) as client:
        for before in ("0", "-1", str(2**31), "99999999999999999999"):
            status, _, body = await get(client, f"{API}/snapshots?before={before}")
            assert (status, b'"bad_query"' in body) == (400, True), before
        _, _, body = await get(client, f"{API}/snapshots?before=2")
        assert [s["seq"] for s in orjson.loads(body)["snapshots"]] == [1]
