"""Live result streams: a process keeps at most VOTESTREAM_SSE_MAX_CONNECTIONS open and
refuses more with 503 and a Retry-After, taking readers again as others leave."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.publish.store import SnapshotStore
from tests.support.campaigns import make_campaign
from tests.support.publish_app import pool_with, publish_client
from tests.support.waiting import eventually_async

CAMPAIGN = make_campaign("streamed")
STREAM = "/v1/campaigns/streamed/stream"


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    async with pool_with(database, CAMPAIGN) as pool:
        yield pool


async def test_streams_over_the_cap_get_503_with_retry_after(pool: asyncpg.Pool) -> None:
    async with publish_client(pool, SnapshotStore(pool), sse_max_connections=2) as client:
        open_streams = [await client.get(STREAM) for _ in range(2)]
        for response in open_streams:
            assert response.status == 200
            assert await response.content.readline() == b"retry: 3000\n"  # it is streaming
        refused = await client.get(STREAM)
        assert refused.status == 503
        assert 5 <= int(refused.headers["Retry-After"]) <= 30
        assert (await refused.json())["error"]["code"] == "too_many_streams"
        metrics = await (await client.get("/metrics")).text()
        assert "votestream_publish_streams_refused_total 1.0" in metrics
        assert "votestream_publish_streams_open 2.0" in metrics

        open_streams[0].close()  # a reader leaves: its place is free again

        async def admitted() -> bool:
            response = await client.get(STREAM)
            response.close()
            return response.status == 200

        await eventually_async(admitted, timeout=10, what="the freed place taken by a new reader")
        open_streams[1].close()
