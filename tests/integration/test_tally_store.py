"""The tally's Postgres store against a real PostgreSQL: replays change nothing, and each batch
is judged by the definitions stored when it commits, whatever the worker's cache holds."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from services.domain.ballot import Ballot
from services.runtime.campaigns import CampaignStore
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.support.campaigns import make_campaign

NOW = datetime.now(UTC)
CAMPAIGN = make_campaign("it", now=NOW)


def record(
    voter: str, selections: tuple[str, ...], offset: int, partition: int = 0, campaign: str = "it"
) -> Record:
    voter_key = hashlib.sha256(voter.encode()).hexdigest()
    ballot = Ballot(uuid.uuid4(), campaign, "web", voter_key, selections, NOW, NOW)
    return Record(ballot, partition, offset, "r" * 64)


async def totals(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT candidate_id, sum(votes) AS v FROM tallies GROUP BY 1")
    return {r["candidate_id"]: r["v"] for r in rows}


async def test_replaying_a_batch_changes_nothing(database: str) -> None:
    pool = await asyncpg.create_pool(database)
    try:
        store = PostgresTallyStore(pool)
        batch = [record("a", ("c1", "c2"), 0), record("b", ("c1",), 1), record("a", ("c3",), 2)]
        first = await store.apply(batch, {"it": CAMPAIGN}.get)
        assert sorted(r["status"] for r in first.rows) == ["counted", "counted", "rejected"]
        before = await totals(pool)
        again = await store.apply(batch, {"it": CAMPAIGN}.get)
        assert again.rows == [] and again.duplicates == 3
        assert await totals(pool) == before == {"c1": 2, "c2": 1}
        reasons = await pool.fetch(
            "SELECT reason, ballots FROM outcome_totals WHERE status='rejected'"
        )
        assert [(r["reason"], r["ballots"]) for r in reasons] == [("limit_exceeded", 1)]
    finally:
        await pool.close()


async def test_a_batch_is_judged_by_the_stored_definition_not_the_workers_cache(
    database: str,
) -> None:
    pool = await asyncpg.create_pool(database)
    try:
        store, campaigns = PostgresTallyStore(pool), CampaignStore(pool)
        opened = make_campaign("late", now=NOW)
        await campaigns.put(opened)  # created after the worker's cache last read campaigns
        first = await store.apply([record("a", ("c1",), 0, campaign="late")], lambda _: None)
        assert [r["status"] for r in first.rows] == ["counted"]

        await campaigns.close("late", NOW - timedelta(minutes=1))  # closed before the ballot
        stale = {"late": opened}.get  # the cache still holds it open
        second = await store.apply([record("b", ("c2",), 1, campaign="late")], stale)
        assert [(r["status"], r["reason"]) for r in second.rows] == [
            ("rejected", "campaign_closed")
        ]
    finally:
        await pool.close()
