"""One publisher at a time: a Postgres advisory lock decides who seals snapshots.

Any number of publish processes may run; the one holding the lock publishes every interval,
the others serve reads and wait. If the leader dies its session ends, the lock is released,
and another takes over and continues the chain from the last stored snapshot. The primary
key (campaign, seq) and the unique index on the final back the lock up: even two writers
could never store two snapshots with one seq nor two finals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka.errors import KafkaError

from services.domain.campaign import Campaign
from services.publish.metrics import PublishMetrics
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.runtime.db import DB_ERRORS

PUBLISHER_LOCK = 7402
log = logging.getLogger(__name__)
RESUME_HORIZON = timedelta(minutes=15)  # older snapshots were surely delivered before


async def lead(pool: asyncpg.Pool, interval: float, work: PublishRound) -> None:
    """Waits for the lock, then runs `work` every interval for as long as it holds it.

    Cancelled (the process stops), it releases the lock before returning, so another
    replica takes over at its next try instead of when this process has finished exiting.
    """
    while True:
        try:
            async with pool.acquire() as conn:
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PUBLISHER_LOCK):  # noqa: ASYNC110 - another process holds it
                    await asyncio.sleep(interval)
                try:
                    log.info("publishing lock taken: this process publishes")
                    await work.resume()
                    while True:
                        await conn.fetchval("SELECT 1")  # still our session, so still our lock
                        await work()
                        await asyncio.sleep(interval)
                except asyncio.CancelledError:
                    await _release(conn)
                    raise
        except DB_ERRORS as exc:
            # the lock's session may be gone: start over and take the lock again if free
            log.warning("publishing lock lost: %s", type(exc).__name__)
            work.step_down()
            await asyncio.sleep(interval)


async def _release(conn: asyncpg.Connection) -> None:
    with contextlib.suppress(*DB_ERRORS):
        await conn.execute("SELECT pg_advisory_unlock($1)", PUBLISHER_LOCK)
        log.info("publishing lock released")


class PublishRound:
    """One round over every campaign: publish what changed, seal what is due, report ages."""

    def __init__(
        self,
        campaigns: Callable[[], list[Campaign]],
        publisher: Publisher,
        store: SnapshotStore,
        metrics: PublishMetrics,
    ) -> None:
        self.campaigns = campaigns
        self.publisher = publisher
        self.store = store
        self.metrics = metrics
        self.current_at: dict[str, float] = {}  # campaign -> when its results were current

    async def resume(self) -> None:
        """Pushes each recent latest snapshot again: the previous leader may have died
        between storing one (perhaps the final) and handing it to every channel."""
        now = datetime.now(UTC)
        for campaign in self.campaigns():
            latest = await self.store.latest(campaign.id)
            if latest and now - datetime.fromisoformat(latest["as_of"]) < RESUME_HORIZON:
                await self.publisher.push(latest)

    async def __call__(self) -> None:
        for campaign in self.campaigns():
            try:
                snapshot = await self.publisher.publish(campaign)
            except (*DB_ERRORS, KafkaError) as exc:
                log.warning("publishing failed: %s", exc, extra={"campaign": campaign.id})
                continue
            self._current(campaign.id)
            if snapshot is not None:
                self.metrics.snapshots.labels(str(snapshot["final"]).lower()).inc()

    def _current(self, campaign_id: str) -> None:
        """The published results match the counts as of now (new snapshot or none needed).

        The age gauge is computed at scrape time, so it keeps growing while this process
        cannot publish at all, which is what the stale-results alert needs to see.
        """
        if campaign_id not in self.current_at:
            gauge = self.metrics.snapshot_age.labels(campaign_id)
            gauge.set_function(lambda: time.time() - self.current_at[campaign_id])
        self.current_at[campaign_id] = time.time()

    def step_down(self) -> None:
        """No longer the leader: the new one reports the age from now on."""
        self.metrics.snapshot_age.clear()
        self.current_at.clear()
