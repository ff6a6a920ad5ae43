"""The publisher's reads and writes in Postgres: counts in, snapshots out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.domain.snapshot import Counts


class SnapshotStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def counts(self, campaign_id: str) -> Counts:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            # one consistent view of votes and outcomes
            votes = await conn.fetch(
                "SELECT candidate_id, channel, votes FROM candidate_totals WHERE campaign_id = $1",
                campaign_id,
            )
            outcomes = await conn.fetch(
                "SELECT status, reason, ballots FROM outcome_totals WHERE campaign_id = $1",
                campaign_id,
            )
        return Counts(
            votes={(r["candidate_id"], r["channel"]): r["votes"] for r in votes},
            ballots_counted=sum(r["ballots"] for r in outcomes if r["status"] == "counted"),
            ballots_rejected={
                r["reason"]: r["ballots"] for r in outcomes if r["status"] == "rejected"
            },
            # by rule; present once a campaign's defences held anything
            ballots_held={r["reason"]: r["ballots"] for r in outcomes if r["status"] == "held"}
            or None,
        )

    async def latest(self, campaign_id: str, *, final: bool = False) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT body FROM snapshots WHERE campaign_id = $1 AND (final OR NOT $2)"
            " ORDER BY seq DESC LIMIT 1",
            campaign_id,
            final,
        )
        return orjson.loads(row["body"]) if row else None

    async def insert(self, snapshot: dict[str, Any]) -> bool:
        """Adds the next link of the chain; False if another publisher got there first."""
        status = await self.pool.execute(
            "INSERT INTO snapshots (campaign_id, seq, as_of, final, hash, body)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING",
            snapshot["campaign_id"],
            snapshot["seq"],
            datetime.fromisoformat(snapshot["as_of"]),
            snapshot["final"],
            snapshot["hash"],
            orjson.dumps(snapshot).decode(),
        )
        return bool(status.endswith(" 1"))

    async def history(
        self, campaign_id: str, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT body FROM snapshots WHERE campaign_id = $1 AND seq < $2"
            " ORDER BY seq DESC LIMIT $3",
            campaign_id,
            before or 2**31 - 1,
            limit,
        )
        return [orjson.loads(r["body"]) for r in rows]

    async def newer(self, campaign_id: str, seq: int, limit: int = 10) -> list[dict[str, Any]]:
        """Snapshots after `seq`, oldest first; at most the newest `limit` of them."""
        rows = await self.pool.fetch(
            "SELECT body FROM snapshots WHERE campaign_id = $1 AND seq > $2"
            " ORDER BY seq DESC LIMIT $3",
            campaign_id,
            seq,
            limit,
        )
        return [orjson.loads(r["body"]) for r in reversed(rows)]

    async def timeseries(self, campaign_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT window_start, candidate_id, channel, sum(votes)::bigint AS count FROM tallies"
            " WHERE campaign_id = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            campaign_id,
        )
        return [
            {
                "window_start": r["window_start"].isoformat(),
                "candidate_id": r["candidate_id"],
                "channel": r["channel"],
                "count": r["count"],
            }
            for r in rows
        ]

    async def cutoff_written(self, campaign_id: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM cutoffs WHERE campaign_id = $1)", campaign_id
            )
        )

    async def record_cutoff(self, campaign_id: str, partitions: int) -> None:
        await self.pool.execute(
            "INSERT INTO cutoffs (campaign_id, partitions) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            campaign_id,
            partitions,
        )

    async def holding(self, campaign_id: str) -> bool:
        """True while a ballot a defence rule held awaits the organiser's decision."""
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM held_ballots"
                " WHERE campaign_id = $1 AND state = 'held')",
                campaign_id,
            )
        )

    async def cutoff_passed(self, campaign_id: str) -> bool:
        """True once the tally has passed the cut-off marker on every partition."""
        return bool(
            await self.pool.fetchval(
                "SELECT c.partitions <= (SELECT count(*) FROM cutoff_marks m"
                "                        WHERE m.campaign_id = c.campaign_id)"
                " FROM cutoffs c WHERE c.campaign_id = $1",
                campaign_id,
            )
        )
