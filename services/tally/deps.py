"""What the tally's agent and timers need, opened once before the worker starts and closed
after its agents stopped (so a batch being stored at SIGTERM still has its pool)."""

from __future__ import annotations

import asyncpg

from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import connect_pool
from services.runtime.settings import Settings
from services.runtime.startup import keep_trying, wait_for_schema
from services.tally.store import PostgresTallyStore


class TallyDeps:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.store: PostgresTallyStore | None = None
        self.campaigns: CampaignCache | None = None

    async def open(self) -> None:
        """Waits for Postgres with the expected schema (retrying), then reads the campaigns."""
        await wait_for_schema(self.settings.dsn)
        pool = await connect_pool(self.settings.dsn, min_size=0, max_size=4, stateless=True)
        campaigns = CampaignCache(CampaignStore(pool), self.settings.campaign_refresh)
        await keep_trying("the campaigns", campaigns.start)
        self.pool, self.store, self.campaigns = pool, PostgresTallyStore(pool), campaigns

    async def close(self) -> None:
        if self.campaigns is not None:
            await self.campaigns.stop()
        if self.pool is not None:
            await self.pool.close()
