"""Faust's aiokafka transport with a short fetch wait, delivering each poll as one batch.

Short fetch wait. Faust hard-codes `fetch_max_wait_ms=1500`. A broker may hold a fetch that
long when a partition has nothing new, which put ~0.7 s between a ballot's arrival and its
count on a 12-partition topic (measured: produce->consume median 725 ms at 1500 ms, 13 ms at
50 ms). A short wait costs only a few more fetch requests when idle, on real Kafka too.
Tansu holds a fetch for the whole wait even when records arrive meanwhile (real Kafka
answers at once), so the wait is also a floor under received->counted. Measured at 550
ballots/s: 50 ms -> p50 75-91 / p99 141-175 ms; 20 ms -> 56 / 111-114 ms; 10 ms -> no
better, while idle CPU (tally + broker) grew from 0.07 to 0.11 (20 ms) and 0.16 cores (10 ms).

One batch per poll. Faust hands a consumer's records to agents one at a time: a task pair
raced per record (`wait_first`), a lock, a Message and an Event built, a queue hop and a
stream step, then an ack each. With no work at all that capped a worker near 6,000
records/s, while the tally's own work costs ~25 µs a ballot. Here the fetcher hands each
poll's records (aiokafka's, undecoded) to a Faust channel as one list, and the agent acks
the list at once after its transaction committed. Faust keeps the group, the assignment,
the flow control around rebalances (a poll fetched while the flow is stopped is dropped and
read again from the committed offsets, as Faust does with its own buffers) and the commits.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from time import monotonic
from typing import Any, cast

import faust
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ChannelT, TopicT, TransportT
from faust.types.tuples import ack_lock
from mode import Service, ServiceT
from mode.utils.futures import notify

FETCH_MAX_WAIT_MS = 20
POLLS_BUFFERED = 1  # one poll waits while the agent stores the last: batches grow with backlog

Poll = list[ConsumerRecord[bytes, bytes]]


class QuickFetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the fetcher at start()
        return consumer


class PollConsumer(faust_aiokafka.Consumer):
    """Faust's consumer with a short fetch wait, feeding whole polls to the app's channel."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return QuickFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        polls: ChannelT[Any] | None = getattr(self.app, "polls", None)
        if polls is None:  # no batch agent registered: Faust's own delivery
            await super()._drain_messages(fetcher)
            return
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        while not (consumer_stopped() or fetcher_stopped()):
            records, active = await self._wait_next_records(timeout=1.0)
            await self.sleep(0)  # getmany may return at once, over and over
            if not records or self.should_stop:
                continue
            poll = await self._unread(records, active)
            commit_every = self._commit_every
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()
            if not self.flow_active:
                # a rebalance stopped the flow since the fetch: the poll is read again from
                # the committed offsets once it resumes (what Faust's own getmany does)
                try:
                    await self.perform_seek()
                except Exception as exc:  # noqa: BLE001 - as Faust: the next rebalance seeks
                    self.log.warning("seek back to the committed offsets failed: %r", exc)
                continue
            if poll:
                # a rebalance while the agent is busy drops the poll (see above)
                await self.wait_first(polls.send(value=poll), self.suspend_flow.wait())

    async def _unread(
        self, records: Mapping[TP, Sequence[Any]], active: Collection[TP] | None
    ) -> Poll:
        """The records not read before, with Faust's bookkeeping of read offsets and gaps."""
        poll: Poll = []
        acks_enabled_for = self.app.topics.acks_enabled_for
        # Faust's livelock check logs a stream as idle when this stays unset with a backlog
        inbound, now = self.app.monitor.stream_inbound_time, monotonic()
        for tp, fetched in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            inbound[tp] = now
            read = self._read_offset[tp]
            for record in fetched:
                offset = record.offset
                if read is not None and offset < read:
                    continue  # read before a seek back
                if read and offset - read > 1 and acks_enabled_for(record.topic):
                    # offsets with no record (compaction, transaction markers) count as acked
                    # once the records after them are
                    await self._add_gap(tp, read + 1, offset)
                poll.append(record)
                read = offset
            self._read_offset[tp] = read
        return poll

    def ack_poll(self, poll: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Acknowledge a whole poll: what `Consumer.ack` does for each record, in bulk."""
        offsets: dict[TP, list[int]] = {}
        for record in poll:
            offsets.setdefault(TP(record.topic, record.partition), []).append(record.offset)
        acks_enabled_for = self.app.topics.acks_enabled_for
        with ack_lock:
            for tp, acked in offsets.items():
                if not acks_enabled_for(tp.topic):
                    continue
                committed = self._committed_offset[tp]
                index = self._acked_index[tp]
                new = [o for o in acked if (committed is None or o >= committed) and o not in index]
                index.update(new)
                self._acked[tp].extend(new)
                self._n_acked += len(new)
        notify(self._waiting_for_ack)


class PollTransport(faust_aiokafka.Transport):
    Consumer = PollConsumer


class TallyApp(faust.App):
    """A Faust app whose consumer fetches with a short wait and, once `feed_polls` named the
    topic, delivers it a poll at a time (see the module docstring)."""

    polls: ChannelT[Any] | None = None

    def _new_transport(self) -> TransportT:
        return PollTransport(self.conf.broker_consumer, self)

    def feed_polls(self, topic: TopicT) -> ChannelT[Any]:
        """Subscribe `topic` and return the channel its polls arrive on, as lists of records."""
        self.topics.add(topic)
        self.polls = self.channel(maxsize=POLLS_BUFFERED)
        return self.polls

    def ack_poll(self, poll: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Acknowledge every record of `poll`; they are committed with the next commit."""
        cast(PollConsumer, self.consumer).ack_poll(poll)
