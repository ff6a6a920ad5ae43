"""The publication page as a browser gets it from publish: whole, and under the same strict
policy as the vote page, so no other site can frame it or feed it scripts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.campaigns import make_campaign
from tests.support.publish_app import CountingStore, pool_with, publish_client

CAMPAIGN = make_campaign("paged", candidates=("c1", "c2"))


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    async with pool_with(database, CAMPAIGN) as pool:
        yield pool


async def test_the_publication_page_is_served_whole_and_never_framed(pool: asyncpg.Pool) -> None:
    async with publish_client(pool, CountingStore(pool)) as client:
        response = await client.get("/campaigns/paged")
        assert response.status == 200 and "<script>" in await response.text()
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert (await client.get("/campaigns/never-made")).status == 404
