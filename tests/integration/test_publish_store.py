"""The publisher on a real PostgreSQL: a snapshot only when something changed, the chain
continuing across a new Publisher (a restart), and per-minute counts as integers."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.domain.campaign import Campaign
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.runtime.campaigns import CampaignStore
from tests.support.campaigns import make_campaign

NOW = datetime.now(UTC)
OPEN = make_campaign("store", candidates=("c1", "c2"), top_n=1, max_selections=1, now=NOW)


async def _never(_: Campaign) -> int:
    raise AssertionError("open campaign: no cut-off")


async def test_snapshots_only_on_change_and_the_chain_survives_a_restart(database: str) -> None:
    pool = await asyncpg.create_pool(database)
    assert pool is not None
    try:
        await CampaignStore(pool).put(OPEN)
        key = Ed25519PrivateKey.generate()
        store = SnapshotStore(pool)
        first = await Publisher(store, key, _never).publish(OPEN)
        assert first is not None and first["seq"] == 1 and first["prev_hash"] is None
        assert await Publisher(store, key, _never).publish(OPEN) is None, "nothing changed"
        await pool.execute(
            "INSERT INTO tallies VALUES ('store', 'c2', 'kiosk', date_trunc('minute', now()), 3, 4)"
        )
        restarted = Publisher(SnapshotStore(pool), key, _never)
        second = await restarted.publish(OPEN)
        assert second is not None
        assert (second["seq"], second["prev_hash"]) == (2, first["hash"])
        assert second["top"] == ["c2"] and second["candidates"][0]["by_channel"]["kiosk"] == 4
        assert await restarted.publish(OPEN) is None
        series = await store.timeseries("store")
        assert [(e["candidate_id"], e["channel"], e["count"]) for e in series] == [
            ("c2", "kiosk", 4)
        ]
        assert isinstance(series[0]["count"], int)
        assert [s["seq"] for s in await store.newer("store", 0)] == [1, 2]
        assert await store.latest("store", final=True) is None
    finally:
        await pool.close()
