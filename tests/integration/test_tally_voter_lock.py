"""One voter's ballots on two partitions, decided by two concurrent batch transactions.

After partitions are added mid-campaign a voter's key hashes to a new partition, so two
workers may each hold one of the voter's ballots at the same moment. The per-voter limit must
hold all the same: the second transaction has to see the first one's usage.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.domain.ballot import Ballot
from services.runtime.campaigns import CampaignStore
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.support.campaigns import make_campaign
from tests.support.waiting import eventually_async

NOW = datetime.now(UTC)
CAMPAIGN = make_campaign("vl", now=NOW)  # one ballot per voter per campaign
TWICE = make_campaign("vl2", now=NOW, limit={"per_voter": 2, "period": "campaign"})
CAMPAIGNS = {c.id: c for c in (CAMPAIGN, TWICE)}.get


def voter_key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def record(voter: str, partition: int, offset: int, campaign_id: str = "vl") -> Record:
    ballot = Ballot(uuid.uuid4(), campaign_id, "web", voter_key(voter), ("c1",), NOW, NOW)
    return Record(ballot, partition, offset, "r" * 64)


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database, min_size=3, max_size=6)
    try:
        yield pool
    finally:
        await pool.close()


async def counted_per_voter(pool: asyncpg.Pool, campaign_id: str) -> Counter[str]:
    rows = await pool.fetch(
        "SELECT voter_key FROM ballots WHERE campaign_id = $1 AND status = 'counted'",
        campaign_id,
    )
    return Counter(r["voter_key"] for r in rows)


async def test_a_voter_on_two_partitions_counts_once_when_both_batches_overlap(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresTallyStore(pool)
    voters = [f"voter-{n}" for n in range(20)]
    first = [record(v, 0, n) for n, v in enumerate(voters)]
    second = [record(v, 1, n) for n, v in enumerate(voters)]
    async with pool.acquire() as gate, gate.transaction():
        # Hold both batch transactions at their cut-off read, after they have begun: without
        # a lock on the voters they would both have read usage 0 by then.
        await gate.execute("LOCK TABLE cutoff_marks IN ACCESS EXCLUSIVE MODE")
        batches = [
            asyncio.create_task(store.apply(first, CAMPAIGNS)),
            asyncio.create_task(store.apply(second, CAMPAIGNS)),
        ]

        async def both_waiting() -> bool:
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            return bool(waiting == 2)

        await eventually_async(both_waiting, 30, "both batches waiting on a lock")
    await asyncio.gather(*batches)
    counted = await counted_per_voter(pool, "vl")
    assert counted == Counter({voter_key(v): 1 for v in voters})
    reasons = await pool.fetch(
        "SELECT reason, count(*) AS n FROM ballots WHERE campaign_id = 'vl'"
        " AND status = 'rejected' GROUP BY 1"
    )
    assert [(r["reason"], r["n"]) for r in reasons] == [("limit_exceeded", len(voters))]
    usage = await pool.fetch("SELECT used FROM voter_usage WHERE campaign_id = 'vl'")
    assert sorted(r["used"] for r in usage) == [1] * len(voters)


# Each example: per voter, how many ballots land on each of three partitions; the
# partitions' batches are applied concurrently, each on its own connection.
spread = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.lists(st.integers(0, 2), min_size=1, max_size=5),
    min_size=1,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(spread=spread)
async def test_however_ballots_spread_over_concurrent_partitions_no_voter_exceeds_the_limit(
    pool: asyncpg.Pool, spread: dict[str, list[int]]
) -> None:
    """Invariant: counted ballots per voter == min(ballots sent, per_voter), and every other
    ballot is `limit_exceeded`, whichever concurrent batch each ballot was in."""
    campaign_id = TWICE.id
    run = uuid.uuid4().hex[:8]  # each example its own voters
    batches: dict[int, list[Record]] = {0: [], 1: [], 2: []}
    for voter, partitions in spread.items():
        for partition in partitions:
            batch = batches[partition]
            batch.append(record(f"{run}-{voter}", partition, len(batch), campaign_id))
    store = PostgresTallyStore(pool)
    await asyncio.gather(*(store.apply(b, CAMPAIGNS) for b in batches.values() if b))
    counted = await counted_per_voter(pool, campaign_id)
    for voter, partitions in spread.items():
        assert counted[voter_key(f"{run}-{voter}")] == min(len(partitions), TWICE.per_voter)
    keys = [voter_key(f"{run}-{v}") for v in spread]
    rejected = await pool.fetchval(
        "SELECT count(*) FROM ballots WHERE voter_key = ANY($1::text[])"
        " AND reason = 'limit_exceeded'",
        keys,
    )
    sent = sum(len(p) for p in spread.values())
    assert rejected == sent - sum(counted[k] for k in keys)


async def test_a_batch_is_judged_by_the_definition_stored_when_it_commits(
    pool: asyncpg.Pool,
) -> None:
    """A worker's cached definition may be a moment old: a change committed before the batch
    took its campaign locks is what the batch is judged by (so a rules change can never let
    ballots be counted under the rules it replaced)."""
    cached = make_campaign("fresh", now=NOW)
    stored = make_campaign("fresh", now=NOW, candidates=("c1", "c2", "c3", "c4", "c5"))
    await CampaignStore(pool).put(stored)
    ballot = Ballot(uuid.uuid4(), "fresh", "web", voter_key("f"), ("c5",), NOW, NOW)
    written = await PostgresTallyStore(pool).apply(
        [Record(ballot, 0, 0, "r" * 64)], {"fresh": cached}.get
    )
    assert [(r["status"], r["reason"]) for r in written.rows] == [("counted", None)]
