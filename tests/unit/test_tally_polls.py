"""The tally's consumer hands a poll to the agent whole; acking it commits past its records."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from aiokafka.structs import ConsumerRecord
from faust.transport.conductor import Conductor
from faust.types import TP

from services.runtime.kafka import BALLOTS
from services.runtime.settings import Settings
from services.tally.app import create_faust_app
from services.tally.transport import PollConsumer, TallyApp


def _record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(BALLOTS, partition, offset, 0, 0, None, b"{}", None, 0, 2, ())


async def _consumer(tmp_path: Path) -> tuple[TallyApp, PollConsumer]:
    app = create_faust_app(Settings(data_dir=tmp_path))
    app.feed_polls(app.topic(BALLOTS, key_serializer="raw", value_serializer="raw"))
    # what subscribing does: `ballots` is a topic whose records are acked
    await cast(Conductor, app.topics)._update_indices()
    consumer = app.consumer
    assert isinstance(consumer, PollConsumer)
    return app, consumer


async def test_an_acked_poll_is_committable_past_its_last_record_gaps_included(
    tmp_path: Path,
) -> None:
    app, consumer = await _consumer(tmp_path)
    first, second = TP(BALLOTS, 0), TP(BALLOTS, 1)
    for tp in (first, second):  # as after the seek to the committed offsets on assignment
        consumer._read_offset[tp] = consumer._committed_offset[tp] = 4
    fetched = {
        # offset 3 was read before the seek; 7 holds no record (a transaction marker)
        first: [_record(0, o) for o in (3, 4, 5, 6, 8)],
        second: [_record(1, o) for o in (4, 5)],
    }
    poll = await consumer._unread(fetched, {first, second})
    assert [(r.partition, r.offset) for r in poll] == [
        (0, 4),
        (0, 5),
        (0, 6),
        (0, 8),
        (1, 4),
        (1, 5),
    ]
    assert consumer._new_offset(first) is None, "nothing is committable before the ack"
    # Faust's livelock check sees the partitions' streams at work
    assert {first, second} <= app.monitor.stream_inbound_time.keys()
    app.ack_poll(poll)
    assert consumer._new_offset(first) == 9
    assert consumer._new_offset(second) == 6


async def test_a_poll_fetched_again_after_a_rebalance_is_acked_once(tmp_path: Path) -> None:
    app, consumer = await _consumer(tmp_path)
    tp = TP(BALLOTS, 0)
    consumer._read_offset[tp] = consumer._committed_offset[tp] = 10
    poll = await consumer._unread({tp: [_record(0, o) for o in (10, 11)]}, {tp})
    app.ack_poll(poll)
    app.ack_poll(poll)  # the same records read again and stored again (changing nothing)
    assert consumer._n_acked == 2
    assert consumer._new_offset(tp) == 12
