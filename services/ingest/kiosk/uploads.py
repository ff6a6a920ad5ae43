"""Taking a kiosk batch: authenticate the device, replay or judge, publish, answer once.

200 is answered only after the broker has every accepted ballot of the batch; if it cannot
take them, the answer is 503 and nothing is stored, so the kiosk sends the same batch again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.domain.errors import (
    ConflictError,
    UnauthorizedError,
    UnavailableError,
    VotestreamError,
)
from services.ingest.ballots import BallotDesk
from services.ingest.kiosk.ballots import campaign_id_of, kiosk_ballot
from services.ingest.kiosk.batch import KioskBatch
from services.ingest.kiosk.chain import ChainBreak, StaleSeqError, check_chain
from services.ingest.kiosk.ledger import KioskLedger, LockedDevice, StoredBatch
from services.ingest.kiosk.registry import Device, PostgresKioskRegistry
from services.ingest.kiosk.signature import check_signature, check_timestamp, parse_public_key
from services.ingest.metrics import IngestMetrics
from services.runtime.campaigns import CampaignCache

log = logging.getLogger(__name__)


@dataclass
class KioskUploads:
    registry: PostgresKioskRegistry
    ledger: KioskLedger
    desk: BallotDesk
    campaigns: CampaignCache
    identity_key: bytes
    metrics: IngestMetrics
    sealing_key: X25519PrivateKey  # opens voter_refs (services/domain/voter_refs.py)
    # An upload holds a pooled connection (the device lock) while its ballots need more for
    # their lookups: at most this many at once, so the pool can never be all locks.
    at_once: int = 4
    _slots: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.at_once)

    async def authenticate(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """The device id, once its registration, the timestamp and the signature check out."""
        device = await self._device(headers.get("X-Kiosk-Id", ""))
        timestamp = headers.get("X-Kiosk-Timestamp")
        check_timestamp(timestamp, now)
        assert timestamp is not None
        key = parse_public_key(device.public_key)
        check_signature(key, headers.get("X-Kiosk-Signature"), timestamp, body)
        return device.device_id

    async def _device(self, device_id: str) -> Device:
        device = await self.registry.get(device_id) if device_id else None
        if device is None:
            raise UnauthorizedError("unknown kiosk", code="unknown_device")
        if device.revoked:
            raise UnauthorizedError("this kiosk is revoked", code="device_revoked")
        return device

    async def take(self, device_id: str, batch: KioskBatch, now: datetime) -> tuple[bytes, bool]:
        """(answer, replayed); raises the refusal (401, 409, 503) otherwise."""
        async with self._slots:
            return await self._take(device_id, batch, now)

    async def _take(self, device_id: str, batch: KioskBatch, now: datetime) -> tuple[bytes, bool]:
        stale: StaleSeqError | None = None
        async with self.ledger.locked(device_id) as locked:
            if locked.device is None or locked.device.revoked:
                raise UnauthorizedError("this kiosk is revoked", code="device_revoked")
            stored = await locked.stored(batch.batch_id)
            if stored is not None:
                return _replayed(stored, device_id, batch), True
            try:
                breaks = check_chain(locked.device.chain, batch.seq, batch.prev_hash)
            except StaleSeqError as exc:
                await locked.record_breaks(batch.batch_id, [exc.chain_break])
                stale, breaks = exc, [exc.chain_break]
            else:
                answer = await self._answer(locked, device_id, batch, breaks, now)
        self._report(device_id, breaks)  # committed: the breaks are on record
        if stale is not None:
            raise stale
        return answer, False

    async def _answer(
        self,
        locked: LockedDevice,
        device_id: str,
        batch: KioskBatch,
        breaks: list[ChainBreak],
        now: datetime,
    ) -> bytes:
        results = await self._judge_all(device_id, batch, now)
        answer = orjson.dumps({"batch_id": str(batch.batch_id), "results": results})
        await locked.record_breaks(batch.batch_id, breaks)
        await locked.accept(batch, answer, sum(r["status"] == "accepted" for r in results))
        return answer

    async def _judge_all(
        self, device_id: str, batch: KioskBatch, now: datetime
    ) -> list[dict[str, Any]]:
        """Publishes the batch's ballots concurrently and waits for every ack.

        One voter's ballots go out one after another, in batch order, so the tally sees them
        in the order the kiosk cast them (the first counts, a second hits the limit). Refs are
        sealed afresh for every ballot, so a voter is known only by the key opened from them.
        """
        # a campaign created a moment ago through another pod
        named = {entry.get("campaign_id") for entry in batch.ballots}
        await self.campaigns.read_unknown(cid for cid in named if isinstance(cid, str))
        # Opening a ref costs ~0.3 ms of CPU (X25519, phone parsing): a thread keeps a batch of
        # a thousand from stalling every other request on this process's event loop.
        prepared = await asyncio.to_thread(
            lambda: [self._prepare(device_id, batch, entry, now) for entry in batch.ballots]
        )
        by_voter: dict[str, list[int]] = {}
        for index, item in enumerate(prepared):
            voter = item[1].voter_key if isinstance(item, tuple) else f"refused:{index}"
            by_voter.setdefault(voter, []).append(index)
        results: list[dict[str, Any]] = [{} for _ in batch.ballots]

        async def judge_in_order(indexes: list[int]) -> None:
            for index in indexes:
                results[index] = await self._judge(batch.ballots[index], prepared[index])

        outcomes = await asyncio.gather(
            *(judge_in_order(indexes) for indexes in by_voter.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # the broker failed (or a bug): no answer is stored
        return results

    def _prepare(
        self, device_id: str, batch: KioskBatch, entry: dict[str, Any], now: datetime
    ) -> tuple[Campaign, Ballot] | VotestreamError:
        """The entry as a ballot of its campaign (its voter_ref opened), or why it is not."""
        try:
            campaign = self.campaigns.require_loaded(campaign_id_of(entry))
            return campaign, kiosk_ballot(
                entry,
                campaign,
                identity_key=self.identity_key,
                sealing_key=self.sealing_key,
                device_id=device_id,
                batch_id=batch.batch_id,
                received_at=now,
            )
        except VotestreamError as exc:
            return exc

    async def _judge(
        self, entry: dict[str, Any], prepared: tuple[Campaign, Ballot] | VotestreamError
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"ballot_id": str(entry["ballot_id"])}
        try:
            if isinstance(prepared, VotestreamError):
                raise prepared
            await self.desk.cast(*prepared, client_id=True)
        except UnavailableError:
            raise
        except VotestreamError as exc:
            self.metrics.requests.labels("kiosk", "rejected").inc()
            self.metrics.rejections.labels("kiosk", exc.code).inc()
            return {**result, "status": "rejected", "reason": exc.code}
        self.metrics.requests.labels("kiosk", "accepted").inc()
        return {**result, "status": "accepted", "reason": None}

    def _report(self, device_id: str, breaks: list[ChainBreak]) -> None:
        for chain_break in breaks:
            self.metrics.kiosk_chain_breaks.labels(chain_break.kind).inc()
            log.warning(
                "kiosk chain break",
                extra={"device_id": device_id, "kind": chain_break.kind, "seq": chain_break.seq},
            )


def _replayed(stored: StoredBatch, device_id: str, batch: KioskBatch) -> bytes:
    if stored.device_id != device_id or stored.body_hash != batch.body_hash:
        raise ConflictError("this batch_id was used for another batch", code="batch_id_reused")
    return stored.answer
