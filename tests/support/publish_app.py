"""The publish HTTP app built by create_app on a real PostgreSQL, without the leader loop:
tests seal snapshots themselves with a Publisher on the same store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from services.domain.campaign import Campaign
from services.publish.app import create_app
from services.publish.deps import PublishDeps
from services.publish.hub import SnapshotHub
from services.publish.metrics import PublishMetrics
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import connect_pool
from services.runtime.settings import Settings


class CountingStore(SnapshotStore):
    """The real store, counting how often the per-minute series is read from Postgres."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.series_reads = 0

    async def timeseries(self, campaign_id: str) -> list[dict[str, Any]]:
        self.series_reads += 1
        return await super().timeseries(campaign_id)


async def _no_cutoff(_: Campaign) -> int:
    return 1  # one partition; the test records passing it in cutoff_marks


@asynccontextmanager
async def pool_with(database: str, campaign: Campaign) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's database, which holds `campaign`."""
    pool = await connect_pool(database)
    try:
        await CampaignStore(pool).put(campaign)
        yield pool
    finally:
        await pool.close()


def publisher(store: SnapshotStore, clock: datetime | None = None) -> Publisher:
    key = Ed25519PrivateKey.generate()
    if clock is None:
        return Publisher(store, key, _no_cutoff)
    return Publisher(store, key, _no_cutoff, clock=lambda: clock)


@asynccontextmanager
async def publish_client(
    pool: asyncpg.Pool, store: SnapshotStore, **settings: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    campaigns = CampaignCache(CampaignStore(pool), refresh=60)
    await campaigns.load()
    registry = CollectorRegistry()
    deps = PublishDeps(
        settings=Settings(**settings),
        pool=pool,
        store=store,
        campaigns=campaigns,
        signing_key=Ed25519PrivateKey.generate(),
        metrics=PublishMetrics.create(registry),
        registry=registry,
        hub=SnapshotHub(),
    )
    async with TestClient(TestServer(create_app(deps))) as client:
        yield client
