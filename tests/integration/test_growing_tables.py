"""Lookups stay on their indexes while a vote fills the tables from empty.

asyncpg prepares each statement once per connection, and PostgreSQL may then keep one generic
plan for it, costed by the table as it was: a sequential scan of the empty `ballots` table,
kept while the table grows. Each test warms a pool's statements on empty tables with lookups
of several keys each (as under load), fills the tables, and counts the rows the next lookups
read by sequential scan."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.ingest.lookup import StoredBallots
from services.runtime.db import connect_pool
from services.tally.store import PostgresTallyStore
from tests.integration.test_tally_store import CAMPAIGN, record

STORED = 5_000  # enough pages that a sequential scan is never the cheaper plan
WARM_UP = 8  # PostgreSQL considers a generic plan from a statement's sixth run
KEYS = 5  # ids per lookup: with one, the custom plans cost less than any generic plan


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    """One connection, as the services' pools make them: its statements stay prepared."""
    pool = await connect_pool(database, max_size=1, stateless=True)
    try:
        yield pool
    finally:
        await pool.close()


async def fill(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO ballots (ballot_id, campaign_id, channel, voter_key, selections, cast_at,"
        " received_at, status, period, source_partition, source_offset, receipt, meta)"
        " SELECT gen_random_uuid(), 'it', 'web', md5(i::text), ARRAY['c1'], now(), now(),"
        " 'counted', 'all', 9, i, md5(i::text), '{}' FROM generate_series(1, $1) AS i",
        STORED,
    )
    await pool.execute(
        "INSERT INTO voter_usage (campaign_id, voter_key, period, used)"
        " SELECT 'it', md5(i::text), 'all', 1 FROM generate_series(1, $1) AS i",
        STORED,
    )


async def rows_read_by_seq_scan(pool: asyncpg.Pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        # this backend's counters reach the shared view once it next goes idle
        await conn.execute("SELECT pg_stat_force_next_flush()")
    rows = await pool.fetch(
        "SELECT relname, seq_tup_read FROM pg_stat_user_tables"
        " WHERE relname IN ('ballots', 'voter_usage')"
    )
    return {r["relname"]: r["seq_tup_read"] for r in rows}


async def test_the_ingest_ballot_id_lookup_stays_on_the_index_as_ballots_arrive(
    pool: asyncpg.Pool,
) -> None:
    stored = StoredBallots(pool)

    async def lookup() -> None:
        # concurrent finds share one query (StoredBallots coalesces them)
        found = await asyncio.gather(*(stored.find(uuid.uuid4()) for _ in range(KEYS)))
        assert found == [None] * KEYS

    for _ in range(WARM_UP):
        await lookup()
    await fill(pool)
    before = await rows_read_by_seq_scan(pool)
    for _ in range(3):
        await lookup()
    after = await rows_read_by_seq_scan(pool)
    assert after["ballots"] - before["ballots"] == 0, (before, after)


async def test_the_tally_batch_reads_stay_on_the_indexes_as_ballots_arrive(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresTallyStore(pool)
    for n in range(WARM_UP):
        batch = [record(f"warm{n}.{k}", ("c1",), n * KEYS + k) for k in range(KEYS)]
        written = await store.apply(batch, {"it": CAMPAIGN}.get)
        assert [r["status"] for r in written.rows] == ["counted"] * KEYS
    await fill(pool)
    before = await rows_read_by_seq_scan(pool)
    batch = [record(f"late{k}", ("c2",), 1_000 + k) for k in range(KEYS)]
    written = await store.apply(batch, {"it": CAMPAIGN}.get)
    assert [r["status"] for r in written.rows] == ["counted"] * KEYS
    after = await rows_read_by_seq_scan(pool)
    assert {t: after[t] - before[t] for t in after} == {"ballots": 0, "voter_usage": 0}
