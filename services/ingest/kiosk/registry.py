"""Registered kiosks: public keys in, revoked for good, listed with their chain status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.domain.errors import ConflictError, MalformedError, NotFoundError
from services.ingest.kiosk.chain import ChainState
from services.ingest.kiosk.signature import parse_public_key

_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Device:
    device_id: str
    public_key: str
    revoked: bool
    registered_at: datetime
    revoked_at: datetime | None
    chain: ChainState

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Device:
        return cls(
            device_id=row["device_id"],
            public_key=row["public_key"],
            revoked=row["revoked"],
            registered_at=row["registered_at"],
            revoked_at=row["revoked_at"],
            chain=ChainState(row["last_seq"], row["last_batch_hash"]),
        )


def check_device_id(device_id: str) -> str:
    if not _DEVICE_ID.match(device_id):
        raise MalformedError(
            "device_id: 1-64 letters, digits, '.', '_' or '-'", code="bad_device_id"
        )
    return device_id


class PostgresKioskRegistry:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def register(self, device_id: str, public_key: str) -> tuple[Device, bool]:
        """Registers a device; the same key again is a no-op. Returns (device, created)."""
        check_device_id(device_id)
        parse_public_key(public_key)
        row = await self.pool.fetchrow(
            "INSERT INTO kiosk_devices (device_id, public_key) VALUES ($1, $2)"
            " ON CONFLICT (device_id) DO NOTHING RETURNING *",
            device_id,
            public_key.strip(),
        )
        if row is not None:
            return Device.from_row(row), True
        existing = await self.require(device_id)
        if existing.revoked:
            raise ConflictError(f"{device_id} was revoked; use a new id", code="device_revoked")
        if existing.public_key != public_key.strip():
            raise ConflictError(f"{device_id} has another key", code="device_exists")
        return existing, False

    async def revoke(self, device_id: str) -> Device:
        row = await self.pool.fetchrow(
            "UPDATE kiosk_devices SET revoked = true, revoked_at = coalesce(revoked_at, now())"
            " WHERE device_id = $1 RETURNING *",
            device_id,
        )
        if row is None:
            raise NotFoundError(f"no kiosk {device_id!r}", code="unknown_device")
        return Device.from_row(row)

    async def get(self, device_id: str) -> Device | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM kiosk_devices WHERE device_id = $1", device_id
        )
        return Device.from_row(row) if row else None

    async def require(self, device_id: str) -> Device:
        device = await self.get(device_id)
        if device is None:
            raise NotFoundError(f"no kiosk {device_id!r}", code="unknown_device")
        return device

    async def listing(self) -> list[dict[str, Any]]:
        """Every device with its chain status: counts of gaps and forks, and the breaks."""
        devices = await self.pool.fetch(
            "SELECT d.*, (SELECT count(*) FROM kiosk_batches b WHERE b.device_id = d.device_id)"
            " AS batches FROM kiosk_devices d ORDER BY d.device_id"
        )
        events = await self.pool.fetch(
            "SELECT device_id, kind, batch_id, seq, expected_seq, detail, seen_at"
            " FROM kiosk_chain_events ORDER BY id"
        )
        return [
            _listed(d, [e for e in events if e["device_id"] == d["device_id"]]) for d in devices
        ]


def _listed(device: asyncpg.Record, events: list[asyncpg.Record]) -> dict[str, Any]:
    breaks = [
        {
            "kind": e["kind"],
            "batch_id": str(e["batch_id"]),
            "seq": e["seq"],
            "expected_seq": e["expected_seq"],
            "detail": e["detail"],
            "seen_at": e["seen_at"].isoformat(),
        }
        for e in events
    ]
    return {
        "device_id": device["device_id"],
        "public_key": device["public_key"],
        "revoked": device["revoked"],
        "registered_at": device["registered_at"].isoformat(),
        "revoked_at": _iso(device["revoked_at"]),
        "last_seq": device["last_seq"],
        "last_batch_hash": device["last_batch_hash"],
        "last_batch_at": _iso(device["last_batch_at"]),
        "batches": device["batches"],
        "chain": {
            "status": "broken" if breaks else "intact",
            "gaps": sum(1 for b in breaks if b["kind"] == "gap"),
            "forks": sum(1 for b in breaks if b["kind"] == "fork"),
            "breaks": breaks,
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
