"""Topics and producers. Idempotence stays off: the embedded broker fails InitProducerId,
and exactly-once effect comes from Postgres keys, not from the producer."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

BALLOTS = "ballots"
SNAPSHOTS = "snapshots"
DETECTIONS = "detections"


async def ensure_topics(bootstrap: str, partitions: int) -> None:
    """Creates `ballots` (keyed by voter), `snapshots` and `detections` if missing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(BALLOTS, partitions, 1),
            NewTopic(SNAPSHOTS, 1, 1),
            NewTopic(DETECTIONS, 1, 1),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(missing)
    finally:
        await admin.close()


def make_producer(bootstrap: str, *, linger_ms: int = 1) -> AIOKafkaProducer:
    """acks=all: a send completes only once every in-sync replica has the record."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=linger_ms,
        request_timeout_ms=10_000,
        retry_backoff_ms=100,
        max_batch_size=256 * 1024,
    )


async def start_producer(producer: AIOKafkaProducer, attempts: int = 50) -> None:
    """Starts once the broker answers (it may still be coming up)."""
    for attempt in range(attempts):
        try:
            await producer.start()
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)
