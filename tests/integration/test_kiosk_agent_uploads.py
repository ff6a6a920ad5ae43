"""The agent's uploader against the real ingest app and PostgreSQL: an answer lost to a
crash is fetched again without a second publish, a broker outage is waited out with
backoff, and a batch the server refuses for good is set aside."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from services.domain.voter_refs import server_sealing_key
from services.kiosk_agent.identity import Sealer
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


SEALER = Sealer(server_sealing_key(b"pepper").public_key())  # the test ingest's identity key


def cast(queue: KioskQueue, n: int, campaign: str = "kc") -> None:
    for i in range(n):
        ref = SEALER.voter_ref(campaign, f"1390000{i:04d}")
        queue.cast(campaign, ref, ["c1"], str(uuid.uuid4()))


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


async def test_once_uploaded_the_queue_file_holds_no_voter_ref_and_no_phone(
    ingest: Ingest, tmp_path: Path
) -> None:
    queue = KioskQueue(tmp_path / "q.db")
    phones = [f"1390000{i:04d}" for i in range(5)]
    refs = [SEALER.voter_ref("kc", phone) for phone in phones]
    for ref in refs:
        queue.cast("kc", ref, ["c1"], str(uuid.uuid4()))
    uploader = await uploader_for(ingest, Kiosk(), queue)

    def stored() -> bytes:
        return b"".join(p.read_bytes() for p in tmp_path.iterdir())

    try:
        batch = queue.next_batch(10)
        assert batch is not None
        assert all(ref.encode() in stored() for ref in refs)  # queued: the refs are there
        await uploader.deliver(batch)
    finally:
        await uploader.session.close()
    assert queue.summary()["ballots"] == {"accepted": 5}
    assert len(ingest.sink.published) == 5
    nxt = queue.next_batch(10)
    assert nxt is None  # nothing left, and the chain head is still known:
    cast(queue, 1)
    following = queue.next_batch(10)
    assert following is not None
    assert orjson.loads(following.body)["prev_hash"] == hashlib.sha256(batch.body).hexdigest()
    running = stored()  # a kiosk stolen while the agent runs
    queue.close()
    for held in (running, stored()):
        for ref, phone in zip(refs, phones, strict=True):
            assert ref[:24].encode() not in held
            assert phone.encode() not in held and phone[3:].encode() not in held
