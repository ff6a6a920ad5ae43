"""Run the publisher: `votestream publish` (or `python -m services.publish`).

Serves the results API on VOTESTREAM_PUBLISH_PORT. Several may run; one at a time holds the
publishing lock (a Postgres advisory lock) and writes snapshots, the others only serve.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from datetime import UTC, datetime

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from services.publish.app import PublishDeps, create_app
from services.publish.cutoff import KafkaCutoffWriter
from services.publish.metrics import PublishMetrics
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import connect_pool
from services.runtime.kafka import make_producer, start_producer
from services.runtime.logs import setup_logging
from services.runtime.service import serve_until_stopped
from services.runtime.settings import Settings

PUBLISHER_LOCK = 7402
log = logging.getLogger(__name__)


async def lead_and_publish(deps: PublishDeps, publisher: Publisher) -> None:
    """Waits for the publishing lock, then publishes every interval while holding it."""
    interval = deps.settings.snapshot_interval
    async with deps.pool.acquire() as conn:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PUBLISHER_LOCK):  # noqa: ASYNC110 - the lock is held by another process
            await asyncio.sleep(interval)
        while True:
            for campaign in deps.campaigns.all():
                try:
                    snapshot = await publisher.publish(campaign)
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("publishing failed: %s", exc, extra={"campaign": campaign.id})
                    continue
                if snapshot is not None:
                    deps.metrics.snapshots.labels(str(snapshot["final"]).lower()).inc()
            await _report_ages(deps)
            await asyncio.sleep(interval)


async def _report_ages(deps: PublishDeps) -> None:
    now = datetime.now(UTC)
    for campaign in deps.campaigns.all():
        latest = await deps.store.latest(campaign.id)
        if latest is not None:
            age = (now - datetime.fromisoformat(latest["as_of"])).total_seconds()
            deps.metrics.snapshot_age.labels(campaign.id).set(age)


async def run(settings: Settings) -> None:
    pool = await connect_pool(settings.dsn, max_size=10)
    producer = make_producer(settings.bootstrap)
    campaigns = CampaignCache(CampaignStore(pool), settings.campaign_refresh)
    signing_key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.signing_key))
    try:
        await start_producer(producer)
        await campaigns.start()
        registry = CollectorRegistry()
        store = SnapshotStore(pool)
        deps = PublishDeps(
            settings, pool, store, campaigns, signing_key, PublishMetrics.create(registry), registry
        )
        publisher = Publisher(store, signing_key, KafkaCutoffWriter(producer))
        task = asyncio.create_task(lead_and_publish(deps, publisher))
        try:
            await serve_until_stopped(create_app(deps), settings.host, settings.publish_port)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await campaigns.stop()
        await producer.stop()
        await pool.close()


def main() -> None:
    setup_logging("publish")
    asyncio.run(run(Settings.from_env(os.environ, required=("signing_key",))))


if __name__ == "__main__":
    main()
