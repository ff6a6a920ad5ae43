"""What the console shows, read from the tables the tally and the publisher write.

Counts come from `intake_counts` (every decided ballot by channel, status and reason, per
minute), the ranking from the latest sealed `snapshots` row: the console shows exactly what
was published, never a count of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

CHART_MINUTES = 60


async def live(pool: asyncpg.Pool, campaign_id: str) -> dict[str, Any]:
    rows = await pool.fetch(
        "SELECT channel, status, reason, sum(ballots)::bigint AS n FROM intake_counts"
        " WHERE campaign_id = $1 GROUP BY 1, 2, 3 HAVING sum(ballots) > 0 ORDER BY 1, 2, 3",
        campaign_id,
    )
    minutes = await pool.fetch(
        "SELECT window_start, sum(ballots)::bigint AS n FROM intake_counts"
        " WHERE campaign_id = $1 AND window_start > now() - make_interval(mins => $2)"
        " GROUP BY 1 ORDER BY 1",
        campaign_id,
        CHART_MINUTES,
    )
    snapshot = await latest_snapshot(pool, campaign_id)
    now = datetime.now(UTC)
    return {
        "delay": await counting_delay(pool, campaign_id),
        "counted": sum(r["n"] for r in rows if r["status"] == "counted"),
        "rejected": sum(r["n"] for r in rows if r["status"] == "rejected"),
        "held": sum(r["n"] for r in rows if r["status"] == "held"),
        "by_channel": _by(rows, "channel"),
        "rejected_by_reason": _by([r for r in rows if r["status"] == "rejected"], "reason"),
        "per_minute": [
            {"minute": r["window_start"].isoformat(), "ballots": r["n"]} for r in minutes
        ],
        "snapshot": _summary(snapshot, now) if snapshot else None,
    }


async def counting_delay(pool: asyncpg.Pool, campaign_id: str) -> dict[str, float | None]:
    """How far behind counting runs, as an organiser can read it: the 95th percentile of
    received -> decided over the last two minutes' ballots, and how long ago the newest
    decided ballot was received (it grows while traffic arrives and the tally stalls; the
    Kafka consumer lag itself is on the Grafana dashboard)."""
    row = await pool.fetchrow(
        "SELECT (SELECT percentile_cont(0.95) WITHIN GROUP"
        "          (ORDER BY extract(epoch FROM counted_at - received_at))"
        "        FROM ballots WHERE campaign_id = $1"
        "          AND received_at > now() - interval '2 minutes') AS p95,"
        " extract(epoch FROM now() - (SELECT max(received_at) FROM ballots"
        "                             WHERE campaign_id = $1)) AS newest_age",
        campaign_id,
    )
    return {
        "p95_seconds": None if row["p95"] is None else round(float(row["p95"]), 2),
        "newest_age_seconds": None
        if row["newest_age"] is None
        else round(float(row["newest_age"]), 1),
    }


def _by(rows: list[asyncpg.Record], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + r["n"]
    return out


def _summary(snapshot: dict[str, Any], now: datetime) -> dict[str, Any]:
    as_of = datetime.fromisoformat(snapshot["as_of"])
    ranked = sorted(snapshot["candidates"], key=lambda c: (c["rank"], c["id"]))
    return {
        "seq": snapshot["seq"],
        "final": snapshot["final"],
        "as_of": snapshot["as_of"],
        "age_seconds": max(0.0, round((now - as_of).total_seconds(), 1)),
        "ballots_counted": snapshot["ballots_counted"],
        "top": [
            {"rank": c["rank"], "id": c["id"], "title": c["title"], "votes": c["votes"]}
            for c in ranked[: max(len(snapshot["top"]), 1)]
        ],
    }


async def latest_snapshot(pool: asyncpg.Pool, campaign_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT body FROM snapshots WHERE campaign_id = $1 ORDER BY seq DESC LIMIT 1",
        campaign_id,
    )
    return _body(row)


SEQ_DIGITS = 9  # snapshots.seq is an int4: a longer number is no snapshot's


async def snapshot(pool: asyncpg.Pool, campaign_id: str, which: str) -> dict[str, Any] | None:
    """`final`, `latest` or a seq number; any other name is no snapshot (None)."""
    if which == "latest":
        return await latest_snapshot(pool, campaign_id)
    if which == "final":
        row = await pool.fetchrow(
            "SELECT body FROM snapshots WHERE campaign_id = $1 AND final", campaign_id
        )
    elif which.isdecimal() and len(which) <= SEQ_DIGITS:  # isdigit passes "²", int() not
        row = await pool.fetchrow(
            "SELECT body FROM snapshots WHERE campaign_id = $1 AND seq = $2",
            campaign_id,
            int(which),
        )
    else:
        return None
    return _body(row)


async def snapshot_list(pool: asyncpg.Pool, campaign_id: str, limit: int = 50) -> list[Any]:
    return list(
        await pool.fetch(
            "SELECT seq, as_of, final, hash FROM snapshots WHERE campaign_id = $1"
            " ORDER BY seq DESC LIMIT $2",
            campaign_id,
            limit,
        )
    )


async def counted_by_campaign(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT campaign_id, sum(ballots)::bigint AS n FROM intake_counts"
        " WHERE status = 'counted' GROUP BY 1"
    )
    return {r["campaign_id"]: r["n"] for r in rows}


def _body(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    body = row["body"]
    found: dict[str, Any] = orjson.loads(body) if isinstance(body, str | bytes) else body
    return found
