"""Stored detections onto topic `detections`: at least once, from the `detections` table.

The rows are the record; the topic carries them to whoever watches (organisers' tools). A
row is marked once the broker acknowledged it, so a failed send is retried on a later tick
and a crash between send and mark sends it again (consumers key on `detection_id`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import faust
import orjson
from aiokafka.errors import KafkaError

from services.runtime.db import DB_ERRORS
from services.runtime.kafka import DETECTIONS

log = logging.getLogger(__name__)
ANNOUNCE_SECONDS = 1.0


class Announcer:
    """Puts stored detections on topic `detections`, at least once, then marks them sent."""

    def __init__(self, pool: asyncpg.Pool, send: Callable[[bytes, bytes], Awaitable[Any]]) -> None:
        self.pool, self.send = pool, send

    async def announce(self, limit: int = 200) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT * FROM detections WHERE announced_at IS NULL ORDER BY id LIMIT $1"
                " FOR UPDATE SKIP LOCKED",  # two tally workers never send one row at once
                limit,
            )
            for row in rows:
                await self.send(row["campaign_id"].encode(), event_bytes(row))
            if rows:
                await conn.execute(
                    "UPDATE detections SET announced_at = now() WHERE id = ANY($1::bigint[])",
                    [r["id"] for r in rows],
                )
        return len(rows)


def event_bytes(row: asyncpg.Record) -> bytes:
    """The event on `detections`: the row, evidence included (it holds no identity)."""
    return orjson.dumps(
        {
            "type": "detection",
            "version": 1,
            "detection_id": row["id"],
            "campaign_id": row["campaign_id"],
            "rule": row["rule"],
            "kind": row["kind"],
            "action": row["action"],
            "subject": row["subject"],
            "window_start": row["window_start"].isoformat(),
            "window_end": row["window_end"].isoformat(),
            "ballots": row["ballots"],
            "evidence": orjson.loads(row["evidence"]),
            "detected_at": row["detected_at"].isoformat(),
        }
    )


def register_announcer(app: faust.App, pool_of: Callable[[], asyncpg.Pool | None]) -> None:
    """A timer on every worker: a detection reaches the topic within about a second."""

    async def send(key: bytes, value: bytes) -> Any:
        return await app.producer.send_and_wait(DETECTIONS, key, value, None, None, None)

    async def announce_detections() -> None:
        pool = pool_of()
        if pool is None:
            return  # the agent has not opened Postgres yet
        try:
            await Announcer(pool, send).announce()
        except (KafkaError, *DB_ERRORS) as exc:
            # the rows stay unannounced and go out on a later tick
            log.warning("detections not announced yet: %s", type(exc).__name__)

    app.timer(ANNOUNCE_SECONDS, name="announce_detections")(announce_detections)
