"""The tally's batch transaction in Postgres: one transaction per batch.

Exactly-once effect: ballots go in with their id as the key (ON CONFLICT DO NOTHING) and
usage, tallies and outcome counts grow only from the rows that were new, in the same
transaction. A batch replayed after a crash, a rebalance or a reset finds its ballots
already stored and changes nothing. An advisory lock per source partition, taken in
partition order, serialises two workers that briefly share a partition during a rebalance.
A lock per voter, taken next, serialises two workers that hold one voter's ballots on two
partitions (a voter's key moves when partitions are added): the second reads the usage the
first committed, so the per-voter limit holds whichever partition a ballot arrives on.
Lock order: services/runtime/locks.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import orjson

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign, parse_campaign
from services.runtime.locks import (
    CAMPAIGN_LOCK,
    LOCK_CAMPAIGNS_SHARED,
    LOCK_PARTITIONS,
    LOCK_VOTERS,
    PARTITION_LOCK,
    VOTER_LOCK,
)
from services.tally import detect
from services.tally.counting import Decisions, Record, decide_batch

_WRITE = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
        ballot_id uuid, campaign_id text, channel text, voter_key text, selections text[],
        cast_at timestamptz, received_at timestamptz, status text, reason text, period text,
        source_partition int, source_offset bigint, receipt text, meta jsonb)
), new AS (
    INSERT INTO ballots (ballot_id, campaign_id, channel, voter_key, selections, cast_at,
                         received_at, status, reason, period, source_partition, source_offset,
                         receipt, meta)
    SELECT ballot_id, campaign_id, channel, voter_key, selections, cast_at, received_at,
           status, reason, period, source_partition, source_offset, receipt, meta
    FROM input ORDER BY ballot_id
    ON CONFLICT (ballot_id) DO NOTHING
    RETURNING *
), usage AS (
    INSERT INTO voter_usage (campaign_id, voter_key, period, used)
    SELECT campaign_id, voter_key, period, count(*) FROM new
    WHERE status IN ('counted', 'held')  -- a held ballot keeps its voter's place
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (campaign_id, voter_key, period)
    DO UPDATE SET used = voter_usage.used + EXCLUDED.used
), votes AS (
    INSERT INTO tallies (campaign_id, candidate_id, channel, window_start, source_partition,
                         votes)
    SELECT campaign_id, candidate_id, channel, date_trunc('minute', received_at),
           source_partition, count(*)
    FROM new CROSS JOIN LATERAL unnest(selections) AS candidate_id
    WHERE status = 'counted'
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (campaign_id, candidate_id, channel, window_start, source_partition)
    DO UPDATE SET votes = tallies.votes + EXCLUDED.votes
), outcomes AS (
    INSERT INTO intake_counts (campaign_id, channel, window_start, status, reason,
                               source_partition, ballots)
    SELECT campaign_id, channel, date_trunc('minute', received_at), status,
           coalesce(reason, ''), source_partition, count(*)
    FROM new GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (campaign_id, channel, window_start, status, reason, source_partition)
    DO UPDATE SET ballots = intake_counts.ballots + EXCLUDED.ballots
)
SELECT ballot_id, channel, status, reason, received_at FROM new
"""


@dataclass(frozen=True)
class Written:
    """What a batch changed: the rows that were new (duplicates are not in it)."""

    rows: Sequence[asyncpg.Record]
    duplicates: int
    detections: Sequence[detect.Found] = ()  # stuffing detections of the new rows


class PostgresTallyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def apply(
        self, records: Sequence[Record], campaigns: Callable[[str], Campaign | None]
    ) -> Written:
        partitions = sorted({r.partition for r in records})
        ballots = [r.event for r in records if isinstance(r.event, Ballot)]
        ballot_ids = [b.ballot_id for b in ballots]
        voters = sorted({(b.campaign_id, b.voter_key) for b in ballots})
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(LOCK_PARTITIONS, PARTITION_LOCK, partitions)
            in_force = await _in_force(conn, sorted({b.campaign_id for b in ballots}), campaigns)
            # before any read: what this batch reads about its voters is then final until
            # it commits, whichever worker holds their other ballots
            if voters:
                await conn.execute(
                    LOCK_VOTERS, VOTER_LOCK, [c for c, _ in voters], [v for _, v in voters]
                )
            known = await _known(conn, ballot_ids)
            usage = await _usage(conn, voters)
            marks = await _marks(conn, partitions)
            decisions = decide_batch(records, in_force, known, usage, marks)
            # a campaign's defences may hold or reject what the rules counted
            found = await detect.screen_batch(conn, decisions, in_force)
            rows = await conn.fetch(_WRITE, _payload(decisions)) if decisions.fates else []
            detected = await detect.record(conn, found, {r["ballot_id"] for r in rows})
            if decisions.marks:
                await conn.executemany(
                    "INSERT INTO cutoff_marks (campaign_id, source_partition) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    sorted(decisions.marks),
                )
        duplicates = decisions.duplicates + len(decisions.fates) - len(rows)
        return Written(rows, duplicates, detected)


async def _in_force(
    conn: asyncpg.Connection, ids: list[str], cached: Callable[[str], Campaign | None]
) -> Callable[[str], Campaign | None]:
    """The definitions in force for this batch: the cached ones, unless a change committed
    since the cache read them (then the stored one). Under the campaigns' shared locks, no
    change can commit until the batch has (services/runtime/locks.py)."""
    if not ids:
        return cached
    await conn.execute(LOCK_CAMPAIGNS_SHARED, CAMPAIGN_LOCK, ids)
    seen = [cached(cid) for cid in ids]
    rows = await conn.fetch(
        "SELECT c.id, c.definition FROM campaigns c"
        " JOIN unnest($1::text[], $2::jsonb[]) AS k(id, definition) ON k.id = c.id"
        " WHERE c.definition IS DISTINCT FROM k.definition",
        ids,
        [orjson.dumps(c.to_dict()).decode() if c else None for c in seen],
    )
    if not rows:
        return cached
    newer = {r["id"]: parse_campaign(orjson.loads(r["definition"])) for r in rows}
    return lambda cid: newer.get(cid) or cached(cid)


async def _known(conn: asyncpg.Connection, ballot_ids: list[UUID]) -> set[UUID]:
    if not ballot_ids:
        return set()
    rows = await conn.fetch(
        "SELECT ballot_id FROM ballots WHERE ballot_id = ANY($1::uuid[])", ballot_ids
    )
    return {r["ballot_id"] for r in rows}


async def _usage(
    conn: asyncpg.Connection, voters: list[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    if not voters:
        return {}
    rows = await conn.fetch(
        "SELECT u.voter_key, u.period, u.used FROM voter_usage u"
        " JOIN unnest($1::text[], $2::text[]) AS k(campaign_id, voter_key)"
        " USING (campaign_id, voter_key)",
        [c for c, _ in voters],
        [v for _, v in voters],
    )
    return {(r["voter_key"], r["period"]): r["used"] for r in rows}


async def _marks(conn: asyncpg.Connection, partitions: list[int]) -> set[tuple[str, int]]:
    rows = await conn.fetch(
        "SELECT campaign_id, source_partition FROM cutoff_marks"
        " WHERE source_partition = ANY($1::int[])",
        partitions,
    )
    return {(r["campaign_id"], r["source_partition"]) for r in rows}


def _payload(decisions: Decisions) -> str:
    # orjson writes UUIDs, datetimes (RFC 3339) and tuples itself, in C: the rows are built
    # from the decoded ballot's own values, with no intermediate dict of strings per ballot.
    docs = [
        {
            "ballot_id": ballot.ballot_id,
            "campaign_id": ballot.campaign_id,
            "channel": ballot.channel,
            "voter_key": ballot.voter_key,
            "selections": ballot.selections,
            "cast_at": ballot.cast_at,
            "received_at": ballot.received_at,
            "meta": ballot.meta,
            "status": fate.status,
            "reason": fate.reason,
            "period": fate.period,
            "source_partition": record.partition,
            "source_offset": record.offset,
            "receipt": record.receipt,
        }
        for fate, record in decisions.fates
        for ballot in (fate.ballot,)
    ]
    return orjson.dumps(docs).decode()
