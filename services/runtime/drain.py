"""The drain before `votestream up` stops the broker: proof that the tally has counted every
ballot written to `ballots` so far, from a marker the tally records (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import encode_cutoff
from services.domain.ballot import Cutoff
from services.runtime.kafka import BALLOTS, consumer_for, producer_for, start_producer
from services.runtime.settings import Settings


class DrainMarker:
    """A fresh cutoff marker on every partition of `ballots`: once the tally has recorded it
    on all of them, every ballot written before it has been counted (or rejected)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.marker_id = f"drain:{uuid.uuid4()}"
        self.partitions = 0

    def consumer(self) -> AIOKafkaConsumer:
        """A consumer with the services' credentials (an external Kafka may require them)."""
        return consumer_for(self.settings, request_timeout_ms=10_000)

    def producer(self) -> AIOKafkaProducer:
        return producer_for(self.settings)

    async def nothing_written(self) -> bool:
        """True if `ballots` holds no record at all, so there is nothing to drain. (Only the
        empty case: the embedded broker under-reports end offsets of non-empty partitions,
        see docs/ARCHITECTURE.md, so "committed == end" proves nothing there.)"""
        consumer = self.consumer()
        await consumer.start()
        try:
            await consumer.topics()  # the metadata of every topic, `ballots` included
            partitions = [
                TopicPartition(BALLOTS, p) for p in consumer.partitions_for_topic(BALLOTS) or ()
            ]
            ends = await consumer.end_offsets(partitions)
            return bool(partitions) and not any(ends.values())
        finally:
            await consumer.stop()

    async def send(self) -> None:
        producer = self.producer()
        try:
            await start_producer(producer, attempts=5)
            partitions = sorted(await producer.partitions_for(BALLOTS))
            data = encode_cutoff(Cutoff(self.marker_id, datetime.now(UTC)))
            for partition in partitions:
                await producer.send_and_wait(BALLOTS, data, key=b"drain", partition=partition)
            self.partitions = len(partitions)
        finally:
            await producer.stop()

    async def passed(self) -> bool:
        conn = await asyncpg.connect(self.settings.dsn, timeout=5)
        try:
            seen = await conn.fetchval(
                "SELECT count(*) FROM cutoff_marks WHERE campaign_id = $1", self.marker_id
            )
            if self.partitions and seen >= self.partitions:
                await conn.execute(
                    "DELETE FROM cutoff_marks WHERE campaign_id = $1", self.marker_id
                )
                return True
            return False
        finally:
            await conn.close()
