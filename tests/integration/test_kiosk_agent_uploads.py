"""The agent's uploader against the real ingest app and PostgreSQL: an answer lost to a
crash is fetched again without a second publish, a broker outage is waited out with
backoff, and a batch the server refuses for good is set aside."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from services.kiosk_agent.identity import voter_ref
from services.kiosk_agent.queue import Batch, KioskQueue
from services.kiosk_agent.uploader import Uploader
from tests.integration.test_kiosk_uploads import Ingest, Kiosk, running_ingest


@pytest.fixture
async def ingest(database: str) -> AsyncIterator[Ingest]:
    async with running_ingest(database, pool_size=10) as running:
        yield running


async def uploader_for(ingest: Ingest, kiosk: Kiosk, queue: KioskQueue) -> Uploader:
    await ingest.register(kiosk)
    session = aiohttp.ClientSession()
    server = str(ingest.client.make_url("/"))
    return Uploader(
        queue, session, server, kiosk.device_id, kiosk.key, batch_size=10, max_backoff=0.2
    )


def cast(queue: KioskQueue, n: int, campaign: str = "kc") -> None:
    for i in range(n):
        queue.cast(campaign, voter_ref(f"1390000{i:04d}"), ["c1"], str(uuid.uuid4()))


async def test_an_answer_lost_in_a_crash_is_fetched_again_without_a_second_publish(
    ingest: Ingest, tmp_path: Path
) -> None:
    queue = KioskQueue(tmp_path / "q.db")
    cast(queue, 5)
    uploader = await uploader_for(ingest, Kiosk(), queue)
    try:
        batch = queue.next_batch(10)
        assert batch is not None
        status, first = await uploader.post(batch)  # the server answered; the kiosk died
        assert status == 200 and len(ingest.sink.published) == 5
        queue.close()
        uploader.queue = queue = KioskQueue(tmp_path / "q.db")
        again = queue.next_batch(10)
        assert again == batch
        await uploader.deliver(again)
    finally:
        await uploader.session.close()
    assert len(ingest.sink.published) == 5
    assert queue.summary()["ballots"] == {"accepted": 5}
    stored = queue.db.execute("SELECT answer FROM batches").fetchone()[0]
    assert orjson.loads(stored) == first


async def test_a_broker_outage_is_waited_out_with_backoff(ingest: Ingest, tmp_path: Path) -> None:
    queue = KioskQueue(tmp_path / "q.db")
    cast(queue, 3)
    uploader = await uploader_for(ingest, Kiosk(), queue)
    calls = 0
    post = uploader.post

    async def counting_post(batch: Batch) -> tuple[int, dict[str, Any]]:
        nonlocal calls
        calls += 1
        ingest.sink.down = calls < 3  # two 503s, then the broker is back
        return await post(batch)

    uploader.post = counting_post  # type: ignore[method-assign]
    try:
        batch = queue.next_batch(10)
        assert batch is not None
        await uploader.deliver(batch)
    finally:
        await uploader.session.close()
    assert calls == 3
    assert queue.summary()["ballots"] == {"accepted": 3}


async def test_a_batch_refused_for_good_is_set_aside(ingest: Ingest, tmp_path: Path) -> None:
    kiosk = Kiosk()
    queue = KioskQueue(tmp_path / "q.db")
    cast(queue, 2)
    uploader = await uploader_for(ingest, kiosk, queue)
    try:
        used = kiosk.body(1, [])  # another history already took seq 1 on the server
        assert (await ingest.upload(kiosk, used))[0] == 200
        batch = queue.next_batch(10)
        assert batch is not None and batch.seq == 1
        await uploader.deliver(batch)
    finally:
        await uploader.session.close()
    assert queue.summary()["ballots"] == {"refused": 2}
    assert queue.summary()["reasons"] == {"stale_seq": 2}
