"""Real publisher processes against real Tansu and PostgreSQL: one leader at a time, the chain
continues across a killed leader and a restart, and two publishers racing seal one final.

The test plays the tally: it changes the tallies table, and once the cut-off markers are in
every partition of `ballots` it records passing them, as the tally does.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.signing import VerifyKey

from services.domain.campaign import Campaign, parse_campaign
from services.domain.snapshot import canonical_bytes
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.runtime.campaigns import CampaignStore
from services.runtime.kafka import BALLOTS, ensure_topics
from services.runtime.processes import free_port
from tests.support.stack import Stack
from tests.support.waiting import eventually_async

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 4


@dataclass
class PublisherProcess:
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['VOTESTREAM_PUBLISH_PORT']}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.publish"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    async def get(self, http: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        try:
            async with http.get(self.url + path) as response:
                return response.status, await response.text()
        except aiohttp.ClientError:
            return 0, ""

    async def published(self, http: aiohttp.ClientSession) -> float:
        status, text = await self.get(http, "/metrics")
        lines = [
            ln for ln in text.splitlines() if ln.startswith("votestream_publish_snapshots_total")
        ]
        return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines) if status == 200 else 0.0


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def publishers(
    stack: Stack, database: str, tmp_path: Path, signing_key: Ed25519PrivateKey
) -> Iterator[list[PublisherProcess]]:
    raw = signing_key.private_bytes_raw()
    env = {
        **os.environ,
        "VOTESTREAM_DATA_DIR": str(tmp_path),
        "VOTESTREAM_DATABASE_URL": database,
        "VOTESTREAM_KAFKA_BOOTSTRAP": stack.bootstrap,
        "VOTESTREAM_SIGNING_KEY": base64.b64encode(raw).decode(),
        "VOTESTREAM_SNAPSHOT_INTERVAL": "0.2",
        "VOTESTREAM_CAMPAIGN_REFRESH": "0.2",
        "VOTESTREAM_PUBLISH_DIR": str(tmp_path / "public"),
    }
    running = [
        PublisherProcess(
            {**env, "VOTESTREAM_PUBLISH_PORT": str(free_port())}, tmp_path / f"p{i}.log"
        )
        for i in (1, 2)
    ]
    yield running
    for p in running:
        p.stop()


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database, server_settings={"timezone": "UTC"})
    assert pool is not None
    yield pool
    await pool.close()


def campaign(closes_in: timedelta) -> Campaign:
    now = datetime.now(UTC)
    return parse_campaign(
        {
            "id": f"race-{uuid.uuid4().hex[:8]}",
            "title": "race",
            "organizer": "o",
            "question": "q",
            "timezone": "UTC",
            "opens_at": (now - timedelta(hours=1)).isoformat(),
            "closes_at": (now + closes_in).isoformat(),
            "kiosk_grace": "1s",
            "top_n": 2,
            "ballot": {"min_selections": 1, "max_selections": 2},
            "candidates": [{"id": f"c{i}", "title": f"C{i}", "unit": "u"} for i in range(1, 5)],
        }
    )


async def add_votes(db: asyncpg.Pool, cid: str, candidate: str, votes: int) -> None:
    await db.execute(
        "INSERT INTO tallies VALUES ($1, $2, 'web', date_trunc('minute', now()), 0, $3)"
        " ON CONFLICT (campaign_id, candidate_id, channel, window_start, source_partition)"
        " DO UPDATE SET votes = tallies.votes + EXCLUDED.votes",
        cid,
        candidate,
        votes,
    )


async def chain(db: asyncpg.Pool, cid: str) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT body FROM snapshots WHERE campaign_id = $1 ORDER BY seq", cid)
    return [orjson.loads(r["body"]) for r in rows]


async def markers_in_every_partition(bootstrap: str, cid: str) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(BALLOTS, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        found: set[int] = set()
        batches = await consumer.getmany(*parts, timeout_ms=2000, max_records=100_000)
        for tp, records in batches.items():
            for record in records:
                doc = orjson.loads(record.value or b"{}")
                if doc.get("kind") == "cutoff" and doc.get("campaign_id") == cid:
                    found.add(tp.partition)
        return len(found) == PARTITIONS
    finally:
        await consumer.stop()


async def test_one_leader_a_continuous_chain_across_kills_and_restarts_and_one_final(
    stack: Stack,
    db: asyncpg.Pool,
    publishers: list[PublisherProcess],
    signing_key: Ed25519PrivateKey,
) -> None:
    await ensure_topics(stack.bootstrap, PARTITIONS)
    race = campaign(closes_in=timedelta(seconds=8))
    await CampaignStore(db).put(race)
    for p in publishers:
        p.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

        async def seq_at_least(n: int) -> bool:
            return len(await chain(db, race.id)) >= n

        async def ready() -> bool:
            codes = [(await p.get(http, "/readyz"))[0] for p in publishers]
            return codes == [200, 200]

        await eventually_async(ready, timeout=60, what="both publishers ready")
        await add_votes(db, race.id, "c1", 3)
        await eventually_async(lambda: seq_at_least(1), what="the first snapshot")
        counts = [await p.published(http) for p in publishers]
        assert sorted(counts)[0] == 0 < sorted(counts)[1], f"one process publishes: {counts}"
        leader, other = publishers if counts[0] else publishers[::-1]

        leader.kill()  # its session ends, the lock frees, the other takes over the chain
        await add_votes(db, race.id, "c2", 5)
        await eventually_async(lambda: seq_at_least(2), what="the next link after the kill")
        assert await other.published(http) > 0, "the follower took the lead"
        leader.start()  # back, as a follower now

        # a reader of the restarted follower gets the final over the live stream
        streamed = asyncio.create_task(first_final_event(http, leader, race.id))
        await add_votes(db, race.id, "c3", 1)
        await eventually_async(lambda: seq_at_least(3), what="a link after the restart")

        cutoffs = await eventually_async(
            lambda: db.fetchval("SELECT partitions FROM cutoffs WHERE campaign_id = $1", race.id),
            timeout=30,
            what="the cut-off markers written after close + grace",
        )
        assert cutoffs == PARTITIONS
        assert await markers_in_every_partition(stack.bootstrap, race.id)
        assert await db.fetchval("SELECT count(*) FROM snapshots WHERE final") == 0
        await db.executemany(
            "INSERT INTO cutoff_marks (campaign_id, source_partition) VALUES ($1, $2)",
            [(race.id, p) for p in range(PARTITIONS)],
        )
        final = await asyncio.wait_for(streamed, 30)

        await add_votes(db, race.id, "c4", 9)  # after the seal: nothing moves
        snapshots = await chain(db, race.id)
        for p in publishers:
            status, body = await p.get(http, f"/v1/campaigns/{race.id}/results/final")
            assert status == 200 and orjson.loads(body) == final
    assert [s["seq"] for s in snapshots] == list(range(1, len(snapshots) + 1))
    assert [s["final"] for s in snapshots] == [False] * (len(snapshots) - 1) + [True]
    assert snapshots[-1] == final
    assert snapshots[0]["prev_hash"] is None
    public = signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    for before, after in itertools.pairwise(snapshots):
        assert after["prev_hash"] == before["hash"]
    for snapshot in snapshots:  # an independent Ed25519 (libsodium) accepts every signature
        VerifyKey(public).verify(canonical_bytes(snapshot), base64.b64decode(snapshot["signature"]))
    assert {c["id"]: c["votes"] for c in final["candidates"]} == {
        "c1": 3,
        "c2": 5,
        "c3": 1,
        "c4": 0,
    }
    for p in publishers:
        assert p.stop() == 0


async def first_final_event(
    http: aiohttp.ClientSession, publisher: PublisherProcess, campaign_id: str
) -> Any:
    async def connected() -> bool:
        return (await publisher.get(http, "/readyz"))[0] == 200

    await eventually_async(connected, timeout=60, what="the restarted publisher ready")
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with http.get(
        publisher.url + f"/v1/campaigns/{campaign_id}/stream", timeout=timeout
    ) as r:
        async for line in r.content:
            if line.startswith(b"data: "):
                snapshot = orjson.loads(line[6:])
                if snapshot["final"]:
                    return snapshot
    raise AssertionError("stream ended before the final")


async def test_two_publishers_racing_past_the_lock_store_one_final_and_no_forked_chain(
    db: asyncpg.Pool, database: str, signing_key: Ed25519PrivateKey
) -> None:
    """Without the lock (a leader that lost its session but runs on), keys still decide."""
    race = campaign(closes_in=timedelta(seconds=-5))
    await CampaignStore(db).put(race)
    await add_votes(db, race.id, "c1", 2)
    await db.execute("INSERT INTO cutoffs VALUES ($1, 1)", race.id)
    await db.execute("INSERT INTO cutoff_marks VALUES ($1, 0)", race.id)

    async def no_markers(_: Campaign) -> int:
        raise AssertionError("markers are already recorded")

    other_pool = await asyncpg.create_pool(database)
    assert other_pool is not None
    try:
        racers = [
            Publisher(SnapshotStore(pool), signing_key, no_markers) for pool in (db, other_pool)
        ]
        results = await asyncio.gather(*(r.publish(race) for r in racers for _ in range(10)))
    finally:
        await other_pool.close()
    sealed = [s for s in results if s is not None]
    assert len(sealed) == 1 and sealed[0]["final"], sealed
    assert await chain(db, race.id) == sealed
