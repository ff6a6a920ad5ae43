"""Detections reach a real topic at least once: sent rows are marked, unsent ones wait."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError

from services.domain.ballot import Ballot
from services.runtime.kafka import make_producer, start_producer
from services.tally.announce import Announcer
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.integration.test_defenses_store import CAMPAIGNS, FARM
from tests.support.stack import Stack

NOW = datetime.now(UTC)


def farm_ballot(n: int) -> Record:
    at = NOW + timedelta(seconds=n)
    voter = hashlib.sha256(f"announce:{n}".encode()).hexdigest()
    ballot = Ballot(uuid.uuid4(), "guarded", "web", voter, ("c2",), at, at, {"ip_prefix": FARM})
    return Record(ballot, 0, n, "r" * 64)


async def read_all(stack: Stack, topic: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        batches = await consumer.getmany(partition, timeout_ms=3000)
        return [orjson.loads(m.value or b"") for m in batches.get(partition, [])]
    finally:
        await consumer.stop()


async def test_detections_go_out_once_marked_and_wait_while_the_broker_fails(
    stack: Stack, database: str
) -> None:
    topic = await stack.new_topic(partitions=1, prefix="detections")
    pool = await asyncpg.create_pool(database)
    producer = make_producer(stack.bootstrap)
    await start_producer(producer)
    try:
        await PostgresTallyStore(pool).apply([farm_ballot(n) for n in range(4)], CAMPAIGNS.get)

        async def failing(key: bytes, value: bytes) -> None:
            raise KafkaTimeoutError

        with pytest.raises(KafkaError):
            await Announcer(pool, failing).announce()
        assert (
            await pool.fetchval("SELECT count(*) FROM detections WHERE announced_at IS NULL") == 1
        )

        async def send(key: bytes, value: bytes) -> None:
            await producer.send_and_wait(topic, value, key=key)

        assert await Announcer(pool, send).announce() == 1
        assert await Announcer(pool, send).announce() == 0  # marked: not sent again
        (event,) = await read_all(stack, topic)
        assert (event["campaign_id"], event["rule"], event["ballots"]) == (
            "guarded",
            "identical_selections",
            2,
        )
        assert event["evidence"]["prefix"] == FARM
    finally:
        await producer.stop()
        await pool.close()
