"""Ceilings of the parts: the broker's produce/consume rate and PostgreSQL's batch inserts."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Sends every record with acks=all (linger 5 ms), awaiting all acks; returns records/s."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        enable_idempotence=False,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(records), 5000):
            futures = [await producer.send(topic, v, key=k) for k, v in records[i : i + 5000]]
            for future in futures:
                await future
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            got = sum(len(v) for v in batch.values())
            if got and started is None:
                started = time.perf_counter()  # from the first fetch: not the group join
            seen += got
        assert started is not None
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def postgres_inserts(dsn: str, rows: int = 40_000, batch: int = 2000) -> float:
    """COPY of ballot-shaped rows in batches, one transaction per batch: the sink's ceiling."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TEMP TABLE bench_ballots (ballot_id uuid PRIMARY KEY, campaign_id text,"
            " voter_key text, selections text[], received_at timestamptz)"
        )
        now = datetime.now(UTC)
        data = [
            (uuid.uuid4(), "bench", uuid.uuid4().hex * 2, ["c01", "c02", "c03"], now)
            for _ in range(rows)
        ]
        started = time.perf_counter()
        for i in range(0, rows, batch):
            async with conn.transaction():
                await conn.copy_records_to_table("bench_ballots", records=data[i : i + batch])
        return rows / (time.perf_counter() - started)
    finally:
        await conn.close()
