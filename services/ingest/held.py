"""Detections and held ballots in Postgres, and the organiser's decisions on them.

A decision is one statement in one transaction: the ballot's status, its held record, the
outcome counts, the tallies (on release: in the ballot's original minute window and source
partition row, as if the tally had counted it then) and the audit row change together. Only
ballots still 'held' are picked, so deciding twice changes nothing the second time. The
voter's limit was taken when the ballot was held, so a release never lets a voter over it;
a rejection keeps it taken (the voter's ballot was judged, not lost).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson

from services.runtime.locks import PARTITION_LOCK

Decision = Literal["release", "reject"]
REJECTED_REASON = "organiser_rejected"

_DECIDE = """
WITH picked AS (
    SELECT b.ballot_id, b.campaign_id, b.channel, b.selections, b.received_at,
           b.source_partition, h.rule
    FROM held_ballots h JOIN ballots b USING (ballot_id)
    WHERE h.campaign_id = $1 AND h.ballot_id = ANY($2::uuid[]) AND h.state = 'held'
    ORDER BY h.ballot_id FOR UPDATE OF h, b
), held AS (
    UPDATE held_ballots h SET state = $3, decided_at = now()
    FROM picked p WHERE h.ballot_id = p.ballot_id
), ballot AS (
    UPDATE ballots b SET status = $4, reason = $5
    FROM picked p WHERE b.ballot_id = p.ballot_id
), audit AS (
    INSERT INTO defense_audit (campaign_id, ballot_id, rule, decision, actor, reason)
    SELECT campaign_id, ballot_id, rule, $6, $7, $8 FROM picked ORDER BY ballot_id
), unheld AS (
    UPDATE intake_counts c SET ballots = c.ballots - g.n
    FROM (SELECT campaign_id, channel, date_trunc('minute', received_at) AS w, rule,
                 source_partition, count(*) AS n FROM picked GROUP BY 1, 2, 3, 4, 5) g
    WHERE c.campaign_id = g.campaign_id AND c.channel = g.channel AND c.window_start = g.w
      AND c.status = 'held' AND c.reason = g.rule AND c.source_partition = g.source_partition
), outcome AS (
    INSERT INTO intake_counts (campaign_id, channel, window_start, status, reason,
                               source_partition, ballots)
    SELECT campaign_id, channel, date_trunc('minute', received_at), $4, coalesce($5, ''),
           source_partition, count(*)
    FROM picked GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (campaign_id, channel, window_start, status, reason, source_partition)
    DO UPDATE SET ballots = intake_counts.ballots + EXCLUDED.ballots
), votes AS (
    INSERT INTO tallies (campaign_id, candidate_id, channel, window_start, source_partition,
                         votes)
    SELECT campaign_id, candidate_id, channel, date_trunc('minute', received_at),
           source_partition, count(*)
    FROM picked CROSS JOIN LATERAL unnest(selections) AS candidate_id
    WHERE $4 = 'counted'
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (campaign_id, candidate_id, channel, window_start, source_partition)
    DO UPDATE SET votes = tallies.votes + EXCLUDED.votes
)
SELECT ballot_id FROM picked
"""


@dataclass(frozen=True)
class Decided:
    decision: Decision
    ballot_ids: list[UUID]  # the ballots this decision changed (not those decided before)


class HeldBallots:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def decide(
        self,
        campaign_id: str,
        decision: Decision,
        *,
        actor: str,
        reason: str,
        ballot_ids: Sequence[UUID] = (),
        rule: str | None = None,
    ) -> Decided:
        """Releases or rejects the named held ballots (or every one a rule holds)."""
        status, why = ("counted", None) if decision == "release" else ("rejected", REJECTED_REASON)
        async with self.pool.acquire() as conn, conn.transaction():
            ids = list(ballot_ids) or await self._held_ids(conn, campaign_id, rule)
            # the tally's lock order: partitions first, so a decision never deadlocks a batch
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, p) FROM (SELECT DISTINCT source_partition AS p"
                " FROM ballots WHERE ballot_id = ANY($2::uuid[]) ORDER BY 1) AS ordered",
                PARTITION_LOCK,
                ids,
            )
            rows = await conn.fetch(
                _DECIDE, campaign_id, ids, _state(decision), status, why, decision, actor, reason
            )
        return Decided(decision, sorted(r["ballot_id"] for r in rows))

    async def _held_ids(
        self, conn: asyncpg.Connection, campaign_id: str, rule: str | None
    ) -> list[UUID]:
        rows = await conn.fetch(
            "SELECT ballot_id FROM held_ballots WHERE campaign_id = $1 AND state = 'held'"
            " AND ($2::text IS NULL OR rule = $2) ORDER BY ballot_id",
            campaign_id,
            rule,
        )
        return [r["ballot_id"] for r in rows]

    async def held(self, campaign_id: str, rule: str | None, limit: int) -> list[dict[str, Any]]:
        """Ballots awaiting a decision: what they chose and when, never who cast them."""
        rows = await self.pool.fetch(
            "SELECT h.ballot_id, h.rule, h.detection_id, h.held_at, b.channel, b.selections,"
            " b.cast_at FROM held_ballots h JOIN ballots b USING (ballot_id)"
            " WHERE h.campaign_id = $1 AND h.state = 'held' AND ($2::text IS NULL OR h.rule = $2)"
            " ORDER BY h.held_at, h.ballot_id LIMIT $3",
            campaign_id,
            rule,
            limit,
        )
        return [_jsonable(r) for r in rows]

    async def detections(self, campaign_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, rule, kind, action, subject, window_start, window_end, ballots, evidence,"
            " detected_at FROM detections WHERE campaign_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            campaign_id,
            after,
            limit,
        )
        return [_jsonable(r) for r in rows]

    async def decisions(self, campaign_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, ballot_id, rule, decision, actor, reason, decided_at FROM defense_audit"
            " WHERE campaign_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            campaign_id,
            after,
            limit,
        )
        return [_jsonable(r) for r in rows]


def _state(decision: Decision) -> str:
    return "released" if decision == "release" else "rejected"


def _jsonable(row: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "evidence":
            value = orjson.loads(value)
        elif isinstance(value, UUID):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out
