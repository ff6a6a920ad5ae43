"""Fault tests: each test gets its own embedded broker (so the fixed topic `ballots` is its
own) and its own database on the session's PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.runtime.campaigns import CampaignStore
from services.runtime.embedded import EmbeddedBroker
from services.runtime.kafka import ensure_topics, make_producer, start_producer
from tests.faults.stream import BallotStream, fault_campaign
from tests.faults.workers import Workers
from tests.support.stack import Stack

PARTITIONS = 6


@dataclass
class Rig:
    """One fault test's world: broker, database, tally workers and a ballot stream."""

    bootstrap: str
    dsn: str
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    workers: Workers
    stream: BallotStream


@pytest.fixture
async def rig(stack: Stack, broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Rig]:
    await ensure_topics(broker.bootstrap, PARTITIONS)
    dsn = await stack.new_database()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    campaign = fault_campaign(f"f-{uuid.uuid4().hex[:8]}")
    await CampaignStore(pool).put(campaign)
    producer = make_producer(broker.bootstrap)
    await start_producer(producer)
    group = f"tally-{uuid.uuid4().hex[:8]}"
    workers = Workers(broker.bootstrap, dsn, group, tmp_path / "workers")
    try:
        yield Rig(broker.bootstrap, dsn, pool, producer, workers, BallotStream(producer, campaign))
    finally:
        workers.stop_all()
        await producer.stop()
        await pool.close()
