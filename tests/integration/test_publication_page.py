"""The publication page as a browser gets it from publish: whole, under the vote page's strict
policy for what it loads, and embeddable (it only shows results; the vote page never is)."""

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


async def test_the_publication_page_loads_nothing_from_elsewhere_and_may_be_embedded(
    pool: asyncpg.Pool,
) -> None:
    async with publish_client(pool, CountingStore(pool)) as client:
        response = await client.get("/campaigns/paged")
        assert response.status == 200 and "<script>" in await response.text()
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        assert policy.endswith("frame-ancestors *")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert (await client.get("/campaigns/never-made")).status == 404
