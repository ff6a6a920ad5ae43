"""Kiosk batches in Postgres, one upload per device at a time.

The device row stays locked (SELECT ... FOR UPDATE) from the replay check until the answer
is stored, so a batch retried while its first upload is still running waits and then gets
the stored answer instead of being published twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from services.ingest.kiosk.batch import KioskBatch
from services.ingest.kiosk.chain import ChainBreak
from services.ingest.kiosk.registry import Device


@dataclass(frozen=True)
class StoredBatch:
    device_id: str
    body_hash: str
    answer: bytes


class LockedDevice:
    def __init__(self, conn: asyncpg.Connection, device: Device | None) -> None:
        self.conn, self.device = conn, device

    async def stored(self, batch_id: UUID) -> StoredBatch | None:
        row = await self.conn.fetchrow(
            "SELECT device_id, body_hash, answer FROM kiosk_batches WHERE batch_id = $1",
            batch_id,
        )
        return (
            StoredBatch(row["device_id"], row["body_hash"], row["answer"].encode()) if row else None
        )

    async def record_breaks(self, batch_id: UUID, breaks: list[ChainBreak]) -> None:
        assert self.device is not None
        await self.conn.executemany(
            "INSERT INTO kiosk_chain_events (device_id, kind, batch_id, seq, expected_seq, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (self.device.device_id, b.kind, batch_id, b.seq, b.expected_seq, b.detail)
                for b in breaks
            ],
        )

    async def accept(self, batch: KioskBatch, answer: bytes, accepted: int) -> None:
        """Stores the answer and moves the device's chain head to this batch."""
        assert self.device is not None
        await self.conn.execute(
            "INSERT INTO kiosk_batches (batch_id, device_id, seq, body_hash, answer, ballots,"
            " accepted) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            batch.batch_id,
            self.device.device_id,
            batch.seq,
            batch.body_hash,
            answer.decode(),
            len(batch.ballots),
            accepted,
        )
        await self.conn.execute(
            "UPDATE kiosk_devices SET last_seq = $2, last_batch_hash = $3, last_batch_at = now()"
            " WHERE device_id = $1",
            self.device.device_id,
            batch.seq,
            batch.body_hash,
        )


class KioskLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def locked(self, device_id: str) -> AsyncIterator[LockedDevice]:
        """A transaction holding the device's row; it commits when the block ends normally."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM kiosk_devices WHERE device_id = $1 FOR UPDATE", device_id
            )
            yield LockedDevice(conn, Device.from_row(row) if row else None)
