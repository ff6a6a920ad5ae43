"""Snapshots onto the Kafka topic `snapshots`, keyed by campaign id (so in order per campaign)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from services.runtime.kafka import SNAPSHOTS

log = logging.getLogger(__name__)


class KafkaSnapshotSink:
    """`deliver` for a QueuedSink: retries until the broker takes the snapshot."""

    def __init__(self, producer: AIOKafkaProducer, topic: str = SNAPSHOTS) -> None:
        self.producer = producer
        self.topic = topic

    async def __call__(self, snapshot: dict[str, Any]) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(KafkaError),
            wait=wait_exponential_jitter(initial=0.2, max=10),
            before_sleep=lambda state: log.warning(
                "snapshot not on Kafka yet, retrying", extra={"attempt": state.attempt_number}
            ),
        ):
            with attempt:
                await self.producer.send_and_wait(
                    self.topic, orjson.dumps(snapshot), key=snapshot["campaign_id"].encode()
                )
