"""The campaign cache against a real PostgreSQL: a reload reads only what changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from services.runtime.campaigns import CampaignCache, CampaignStore
from tests.support.campaigns import make_campaign


async def test_a_reload_sees_every_change_and_reparses_only_the_changed(database: str) -> None:
    pool = await asyncpg.create_pool(database)
    try:
        store = CampaignStore(pool)
        await store.put(make_campaign("a"))
        await store.put(make_campaign("b"))
        cache = CampaignCache(store, refresh=60)
        await cache.load()
        a, b = cache.require("a"), cache.require("b")

        closed = await store.close("b", datetime.now(UTC) - timedelta(minutes=1))
        await store.put(make_campaign("c"))
        await cache.fresh_as_of(datetime.now(UTC))

        assert cache.get("a") is a  # unchanged: kept, not read and parsed again
        assert cache.get("b") is not b and cache.require("b").closes_at == closed.closes_at
        assert cache.require("b").status(datetime.now(UTC)) == "closed"
        assert cache.get("c") is not None

        await pool.execute("DELETE FROM campaigns WHERE id = 'c'")
        await cache.load()
        assert cache.get("c") is None and sorted(c.id for c in cache.all()) == ["a", "b"]
    finally:
        await pool.close()
