"""Consumer lag of the tally group on the partitions of `ballots` this worker owns.

lag = the end offset the broker reports - the offset the group committed, as
`kafka-consumer-groups --describe` computes it: right on real Kafka. The embedded Tansu
broker reports wrong end offsets, so there the figure means nothing (the dashboard says so);
votestream_tally_oldest_uncounted_age_seconds needs no end offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from typing import Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from prometheus_client import Gauge

from services.runtime.kafka import BALLOTS, consumer_for
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
LAG_INTERVAL = 5.0  # seconds between two readings; Prometheus scrapes every 15 s


class OffsetReader(Protocol):
    """The part of AIOKafkaConsumer that reads a group's offsets (a fake in unit tests)."""

    async def end_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        raise NotImplementedError

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> Mapping[TopicPartition, int]:
        raise NotImplementedError

    async def committed(self, partition: TopicPartition) -> int | None:
        raise NotImplementedError


async def partition_lag(reader: OffsetReader, partitions: list[TopicPartition]) -> dict[int, int]:
    """Records between the group's committed offset and the end, per partition."""
    if not partitions:
        return {}
    ends = await reader.end_offsets(partitions)
    committed = {tp: await reader.committed(tp) for tp in partitions}
    # Nothing committed yet: the group starts at the earliest record (auto_offset_reset).
    uncommitted = [tp for tp, offset in committed.items() if offset is None]
    starts = await reader.beginning_offsets(uncommitted) if uncommitted else {}
    return {tp.partition: ends[tp] - _start_of(tp, committed, starts) for tp in partitions}


def _start_of(
    tp: TopicPartition,
    committed: Mapping[TopicPartition, int | None],
    starts: Mapping[TopicPartition, int],
) -> int:
    offset = committed[tp]
    return starts.get(tp, 0) if offset is None else offset


class LagGauge:
    """Shows the partitions of the latest reading and drops those this worker lost,
    so that summing over workers never counts a partition twice."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.shown: set[int] = set()

    def show(self, lag: Mapping[int, int]) -> None:
        for partition in self.shown - lag.keys():
            self.gauge.remove(str(partition))
        for partition, records in lag.items():
            self.gauge.labels(str(partition)).set(records)
        self.shown = set(lag)


def owned_partitions(app: faust.App) -> list[TopicPartition] | None:
    """This worker's partitions of `ballots`; None before its consumer started."""
    try:
        assigned: Collection[tuple[str, int]] = app.consumer.assignment()
    except ConsumerNotStarted:
        return None
    return sorted(TopicPartition(topic, p) for topic, p in assigned if topic == BALLOTS)


async def report_once(app: faust.App, reader: OffsetReader, gauge: LagGauge) -> None:
    partitions = owned_partitions(app)
    if partitions is None:
        return
    try:
        gauge.show(await partition_lag(reader, partitions))
    except KafkaError as exc:  # the next reading will do; lag is not worth a crash
        log.warning("consumer lag not read: %s", type(exc).__name__)


def register_lag_reporter(app: faust.App, settings: Settings, gauge: Gauge) -> None:
    """A task that reads the lag every LAG_INTERVAL through its own, group-less client."""

    @app.task  # type: ignore[untyped-decorator]
    async def report_consumer_lag() -> None:
        # Reads the group's offsets without joining the group (no subscription).
        reader = consumer_for(settings, group_id=settings.tally_group, enable_auto_commit=False)
        await _start(reader)
        shown = LagGauge(gauge)
        try:
            while True:
                await report_once(app, reader, shown)
                await asyncio.sleep(LAG_INTERVAL)
        finally:
            await reader.stop()


async def _start(reader: AIOKafkaConsumer) -> None:
    while True:
        try:
            await reader.start()
        except KafkaError as exc:
            log.warning("lag reader not connected, retrying: %s", type(exc).__name__)
            await asyncio.sleep(LAG_INTERVAL)
        else:
            return
