"""Consumer lag read from a real broker: end offsets minus the group's committed offsets."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, Gauge

from services.tally.lag import LagGauge, partition_lag
from tests.support.stack import Stack


async def produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in per_partition.items():
            for i in range(count):
                await producer.send_and_wait(topic, f"r{i}".encode(), partition=partition)
    finally:
        await producer.stop()


async def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


async def test_lag_is_what_the_group_has_not_committed_yet(stack: Stack) -> None:
    topic, group = await stack.new_topic(partitions=3, prefix="lag"), f"g-{uuid.uuid4().hex}"
    tps = [TopicPartition(topic, p) for p in range(3)]
    await produce(stack.bootstrap, topic, {0: 5, 1: 3, 2: 0})
    await commit(stack.bootstrap, group, {tps[0]: 2})
    reader = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap, group_id=group, enable_auto_commit=False
    )
    await reader.start()
    try:
        # partition 1: nothing committed, so the group would start from the earliest record
        assert await partition_lag(reader, tps) == {0: 3, 1: 3, 2: 0}
        assert await partition_lag(reader, []) == {}
    finally:
        await reader.stop()


def test_the_gauge_drops_partitions_the_worker_no_longer_owns() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("lag", "lag", ["partition"], registry=registry)
    shown = LagGauge(gauge)
    shown.show({0: 4, 1: 2})
    shown.show({1: 7})
    assert registry.get_sample_value("lag", {"partition": "0"}) is None
    assert registry.get_sample_value("lag", {"partition": "1"}) == 7
