"""The campaign cache against a real PostgreSQL: a reload reads only what changed, and a
campaign created elsewhere a moment ago is found at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from services.domain.errors import NotFoundError
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
        a, b = cache.require_loaded("a"), cache.require_loaded("b")

        closed = await store.close("b", datetime.now(UTC) - timedelta(minutes=1))
        await store.put(make_campaign("c"))
        await cache.fresh_as_of(datetime.now(UTC))

        assert cache.get("a") is a  # unchanged: kept, not read and parsed again
        assert cache.get("b") is not b and cache.require_loaded("b").closes_at == closed.closes_at
        assert cache.require_loaded("b").status(datetime.now(UTC)) == "closed"
        assert cache.get("c") is not None

        await pool.execute("DELETE FROM campaigns WHERE id = 'c'")
        await cache.load()
        assert cache.get("c") is None and sorted(c.id for c in cache.all()) == ["a", "b"]
    finally:
        await pool.close()


async def test_a_campaign_created_by_another_process_is_found_by_the_next_request(
    database: str,
) -> None:
    pool = await asyncpg.create_pool(database)
    try:
        store = CampaignStore(pool)
        cache = CampaignCache(store, refresh=3600)  # the background refresh never comes
        await cache.load()
        await CampaignStore(pool).put(make_campaign("new"))  # as another pod's admin API does
        reads = 0
        changed_since = store.changed_since

        async def counted(*args: object) -> object:
            nonlocal reads
            reads += 1
            return await changed_since(*args)  # type: ignore[arg-type]

        store.changed_since = counted  # type: ignore[method-assign]
        found = await asyncio.gather(*(cache.require("new") for _ in range(50)))
        assert {c.id for c in found} == {"new"}
        # fifty requests that missed together: the read in flight when they came, and one
        # more that starts after all of them, never one each
        assert reads <= 2

        with pytest.raises(NotFoundError):
            await cache.require("never-created")
        assert cache.get("never-created") is None
    finally:
        await pool.close()


async def test_a_stored_definition_that_no_longer_parses_leaves_the_others_readable(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await asyncpg.create_pool(database)
    try:
        store = CampaignStore(pool)
        await store.put(make_campaign("kept"))
        cache = CampaignCache(store, refresh=3600)
        await cache.load()
        last_good = cache.require_loaded("kept")
        # as a newer release's stricter rules, or a hand edit, would leave them
        refused = orjson.dumps({"id": "x", "candidates": []}).decode()
        await pool.execute(
            "UPDATE campaigns SET definition = $1::jsonb, updated_at = now()", refused
        )
        await pool.execute(
            "INSERT INTO campaigns (id, definition) VALUES ('broken', $1::jsonb)", refused
        )
        await store.put(make_campaign("new"))
        await cache.load()
        assert cache.get("new") is not None and cache.get("broken") is None
        assert cache.get("kept") is last_good  # the last version it could read
        assert {r.getMessage().split(":")[0] for r in caplog.records} >= {
            "campaign kept",
            "campaign broken",
        }
    finally:
        await pool.close()
