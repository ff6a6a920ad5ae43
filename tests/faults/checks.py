"""What the fault tests await and assert: stored ballots, exact totals, a clean recount."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.events import encode_cutoff
from services.domain.ballot import Cutoff
from services.domain.campaign import Campaign
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.runtime.kafka import BALLOTS
from tests.faults.stream import BallotStream
from tests.support.recount import run_recount
from tests.support.waiting import eventually_async


async def stored(pool: asyncpg.Pool, campaign_id: str) -> int:
    """Ballots the tally has decided (counted or rejected) for the campaign."""
    return int(
        await pool.fetchval("SELECT count(*) FROM ballots WHERE campaign_id = $1", campaign_id)
    )


async def all_stored(pool: asyncpg.Pool, stream: BallotStream, timeout: float = 180) -> None:
    want = len(stream.sent)

    async def done() -> bool:
        return await stored(pool, stream.campaign.id) == want

    await eventually_async(done, timeout, f"all {want} ballots stored")


async def assert_exact(pool: asyncpg.Pool, stream: BallotStream) -> None:
    """Published totals equal the independent count, and every ballot has one row."""
    expected = stream.expected()
    counts = await SnapshotStore(pool).counts(stream.campaign.id)
    assert {k: v for k, v in counts.votes.items() if v} == dict(expected.votes)
    assert counts.ballots_counted == expected.counted
    assert dict(counts.ballots_rejected) == expected.rejected
    assert await stored(pool, stream.campaign.id) == len(stream.sent)
    await assert_fates(pool, stream)


async def assert_fates(pool: asyncpg.Pool, stream: BallotStream) -> None:
    """Every ballot's fate (what GET /v1/ballots/{id} answers): an unknown candidate is
    rejected as such; of a voter's valid ballots exactly one is counted, the others are
    `limit_exceeded`."""
    rows = await pool.fetch(
        "SELECT ballot_id, status, reason FROM ballots WHERE campaign_id = $1",
        stream.campaign.id,
    )
    fates = {r["ballot_id"]: (r["status"], r["reason"]) for r in rows}
    per_voter: dict[str, list[tuple[str, str | None]]] = {}
    for ballot_id, ballot in stream.sent.items():
        if "c99" in ballot.selections:
            assert fates[ballot_id] == ("rejected", "unknown_candidate")
        else:
            per_voter.setdefault(ballot.voter_key, []).append(fates[ballot_id])
    for seen in per_voter.values():
        assert sorted(seen, key=str) == sorted(
            [("counted", None)] + [("rejected", "limit_exceeded")] * (len(seen) - 1), key=str
        )


async def more_stored(rig: Any, more: int) -> None:
    target = await stored(rig.pool, rig.stream.campaign.id) + more

    async def reached() -> bool:
        return await stored(rig.pool, rig.stream.campaign.id) >= target

    await eventually_async(reached, 90, f"{target} ballots stored")


async def caught_up(rig: Any, name: str) -> None:
    """The worker has its partitions and has worked off the backlog its restart left
    (to within ~1 s of stream)."""
    await asyncio.to_thread(rig.workers.wait_ready, name)

    async def near() -> bool:
        return await stored(rig.pool, rig.stream.campaign.id) >= len(rig.stream.sent) - 200

    await eventually_async(near, 120, "tally caught up with the stream")


async def publish_and_recount(pool: asyncpg.Pool, campaign: Campaign, dsn: str) -> str:
    """Seals a snapshot with the real publisher, then runs `votestream recount`."""

    async def no_cutoff(_: Campaign) -> int:
        raise AssertionError("the campaign is open: no cut-off to write")

    publisher = Publisher(SnapshotStore(pool), Ed25519PrivateKey.generate(), no_cutoff)
    await publisher.publish(campaign)
    result = run_recount(dsn, campaign.id)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


async def drained(producer: AIOKafkaProducer, pool: asyncpg.Pool, timeout: float = 120) -> None:
    """Awaits the tally passing a fresh marker on every partition: it has read everything
    produced before (no end offsets needed, which the embedded broker reports wrong)."""
    marker = f"drain:{uuid.uuid4()}"
    partitions = sorted(await producer.partitions_for(BALLOTS))
    data = encode_cutoff(Cutoff(marker, datetime.now(UTC)))
    for partition in partitions:
        await producer.send_and_wait(BALLOTS, data, key=b"drain", partition=partition)

    async def passed() -> bool:
        n = await pool.fetchval("SELECT count(*) FROM cutoff_marks WHERE campaign_id = $1", marker)
        return bool(n == len(partitions))

    await eventually_async(passed, timeout, "tally past a drain marker on every partition")


async def stored_beyond_commit(bootstrap: str, group: str, pool: asyncpg.Pool) -> int:
    """Records already in Postgres past the group's committed offsets: what a crash right
    now would make Kafka deliver again (a kill between the Postgres and the offset commit)."""
    # a consumer that never subscribes asks for the group's offsets without joining it
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata
        partitions = consumer.partitions_for_topic(BALLOTS) or set()
        offsets = {p: await consumer.committed(TopicPartition(BALLOTS, p)) for p in partitions}
    finally:
        await consumer.stop()
    committed = {p: offset or 0 for p, offset in offsets.items()}
    rows = await pool.fetch(
        "SELECT source_partition AS p, max(source_offset) + 1 AS end FROM ballots GROUP BY 1"
    )
    return sum(max(0, r["end"] - committed.get(r["p"], 0)) for r in rows)


async def in_transaction(pool: asyncpg.Pool, since: datetime) -> bool:
    """A tally worker started after `since` holds a batch transaction open right now (the
    Postgres sessions of killed workers may linger a moment, so they do not count)."""
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_start >= $1 AND xact_start IS NOT NULL"
            " AND (state = 'idle in transaction' OR query LIKE '%pg_advisory_xact_lock%'"
            "      OR query LIKE '%jsonb_to_recordset%' OR query LIKE '%FROM voter_usage%'))",
            since,
        )
    )
