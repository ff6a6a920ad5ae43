"""The publishing loop: a new snapshot whenever the counts changed, and exactly one final.

Sealing the final never rests on a timer or on the broker's end offsets: at close +
kiosk_grace the publisher writes a cut-off marker into every partition of `ballots`, and
seals once the tally has recorded passing the marker on all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.domain.campaign import Campaign
from services.domain.snapshot import contents, seal
from services.publish.store import SnapshotStore

log = logging.getLogger(__name__)
CHAIN_FIELDS = ("seq", "as_of", "final", "prev_hash", "hash", "signature")


class SnapshotSink(Protocol):
    """A channel that carries snapshots (Kafka, files, webhooks); it must not block."""

    async def push(self, snapshot: dict[str, Any]) -> None: ...


CutoffWriter = Callable[[Campaign], Awaitable[int]]  # writes markers, returns partitions


class Publisher:
    def __init__(
        self,
        store: SnapshotStore,
        signing_key: Ed25519PrivateKey,
        write_cutoff: CutoffWriter,
        sinks: Sequence[SnapshotSink] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.signing_key = signing_key
        self.write_cutoff = write_cutoff
        self.sinks = list(sinks)
        self.clock = clock
        self.published = 0

    async def publish(self, campaign: Campaign) -> dict[str, Any] | None:
        """One round for one campaign; returns the snapshot it sealed, if any."""
        latest = await self.store.latest(campaign.id)
        if latest is not None and latest["final"]:
            return None  # sealed: never changes afterwards
        final = await self._ready_to_seal(campaign)
        body = contents(campaign, await self.store.counts(campaign.id))
        if latest is not None and not final and _body(latest) == body:
            return None
        snapshot = seal(
            body,
            seq=(latest["seq"] + 1) if latest else 1,
            as_of=self.clock(),
            final=final,
            prev_hash=latest["hash"] if latest else None,
            signing_key=self.signing_key,
        )
        if not await self.store.insert(snapshot):
            return None  # another publisher sealed this seq first
        self.published += 1
        await self.push(snapshot)
        return snapshot

    async def push(self, snapshot: dict[str, Any]) -> None:
        """Hands a stored snapshot to every channel (each push only queues it)."""
        for sink in self.sinks:
            await sink.push(snapshot)

    async def _ready_to_seal(self, campaign: Campaign) -> bool:
        if self.clock() < campaign.cutoff:
            return False
        if not await self.store.cutoff_written(campaign.id):
            partitions = await self.write_cutoff(campaign)
            await self.store.record_cutoff(campaign.id, partitions)
        if not await self.store.cutoff_passed(campaign.id):
            return False
        return not await self.store.holding(campaign.id)  # held ballots need a decision first


def _body(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k not in CHAIN_FIELDS}
