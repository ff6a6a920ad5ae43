"""The Faust app: `ballots` in, every ballot's fate and the tallies out to Postgres.

The agent reads like the domain: decode -> decide (services.tally.counting) -> store.
Offsets are acknowledged only after the batch's transaction committed, so a crash at any
point replays the batch, and the store's unique keys make the replay change nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import asyncpg
import faust
from aiokafka.structs import ConsumerRecord

from schemas.events import EventDecodeError, decode_event
from services.domain.ballot import Ballot
from services.domain.errors import CampaignInvalidError
from services.runtime.kafka import BALLOTS, KafkaSecurity
from services.runtime.settings import Settings
from services.tally import announce
from services.tally.counting import Record
from services.tally.deps import TallyDeps
from services.tally.metrics import TallyMetrics
from services.tally.store import Written
from services.tally.transport import Poll, TallyApp

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
FINISH_SECONDS = 10.0  # on stop, how long the batch being stored may take to commit


def create_faust_app(settings: Settings) -> TallyApp:
    """A Faust app configured for both real Kafka and the embedded broker's faults."""
    return TallyApp(
        settings.tally_group,
        broker=f"kafka://{settings.bootstrap}",
        broker_credentials=KafkaSecurity.from_settings(settings).faust_credentials(),
        store="memory://",  # Postgres holds the counting state, not Faust tables
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,  # Tansu's first JoinGroup waits half of this
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.tally_batch_size,
        stream_wait_empty=False,
        producer_acks=-1,
        datadir=str(settings.data_dir / "faust"),
    )


class Tally:
    """Holds what the agent needs; `run` is the agent body."""

    def __init__(
        self, settings: Settings, metrics: TallyMetrics, deps: TallyDeps | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.deps = deps or TallyDeps(settings)
        self.assigned = asyncio.Event()
        # received_at of the oldest ballot taken but not yet stored; the gauge reads it at
        # scrape time, so it keeps growing while a batch is stuck (no end offsets needed)
        self.pending_since: datetime | None = None
        metrics.oldest_uncounted.set_function(self._oldest_uncounted_age)

    def _oldest_uncounted_age(self) -> float:
        since = self.pending_since
        return (datetime.now(UTC) - since).total_seconds() if since else 0.0

    async def run(self, stream: faust.StreamT[Poll]) -> None:
        app = cast(TallyApp, stream.app)
        async for poll in stream:  # one consumer poll: its size follows the backlog
            storing = asyncio.ensure_future(self._apply_until_stored(poll))
            try:
                await asyncio.shield(storing)
            except asyncio.CancelledError:
                # The worker is stopping: finish and commit the batch being stored rather
                # than roll it back, unless Postgres keeps it waiting (then it is replayed).
                if await _finished(storing):
                    app.ack_poll(poll)
                raise
            app.ack_poll(poll)

    async def _apply_until_stored(self, poll: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        records, undecodable = _records(poll)
        received = [r.event.received_at for r in records if isinstance(r.event, Ballot)]
        self.pending_since = min(received) if received else None
        while True:
            started = time.perf_counter()
            try:
                store, campaigns = self.deps.store, self.deps.campaigns
                assert store is not None and campaigns is not None, "TallyDeps not opened"
                # The cache is a hint: the store judges each batch by the definitions stored
                # when it commits (a campaign created or closed a moment ago included), so no
                # query per batch keeps the cache fresh; its background refresh does.
                written = await store.apply(records, campaigns.get)
                if undecodable:
                    await self._keep_undecodable(undecodable)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # Postgres is down or failing: hold the batch (nothing acked) and retry.
                log.warning("batch not stored, retrying: %s", type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            except CampaignInvalidError as exc:
                # A stored definition that no longer parses (a newer release's rules, a hand
                # edit): hold the batch rather than count it under unknown rules or crash the
                # agent, until the definition is mended.
                log.warning(
                    "batch not stored: the definition of a campaign in it does not parse: %s", exc
                )
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._observe(written, len(poll), time.perf_counter() - started)
            self.pending_since = None
            return

    async def _keep_undecodable(self, items: list[tuple[int, int, str, bytes]]) -> None:
        assert self.deps.pool is not None
        await self.deps.pool.executemany(
            "INSERT INTO undecodable_events (source_partition, source_offset, error, raw)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            items,
        )

    def _observe(self, written: Written, size: int, seconds: float) -> None:
        m = self.metrics
        m.batch_seconds.observe(seconds)
        m.batch_size.observe(size)
        m.duplicates.inc(written.duplicates)
        now = datetime.now(UTC)
        # counters grow once per label set and batch, not once per ballot
        counted: Counter[str] = Counter()
        rejected: Counter[tuple[str, str]] = Counter()
        for row in written.rows:
            if row["status"] == "counted":
                counted[row["channel"]] += 1
                m.end_to_end.observe((now - row["received_at"]).total_seconds())
            elif row["status"] == "rejected":  # 'held' waits for the organiser
                rejected[row["channel"], row["reason"]] += 1
        for channel, n in counted.items():
            m.counted.labels(channel).inc(n)
        for (channel, reason), n in rejected.items():
            m.rejected.labels(channel, reason).inc(n)
        for found in written.detections:
            m.detections.labels(found.detection.rule.kind).inc(len(found.detection.ballot_ids))


async def _finished(storing: asyncio.Future[None]) -> bool:
    try:
        async with asyncio.timeout(FINISH_SECONDS):
            await storing  # a timeout cancels it: the transaction rolls back
    except TimeoutError:
        log.warning("batch not stored before stopping; it is delivered again on restart")
        return False
    return True


def _records(
    poll: Sequence[ConsumerRecord[bytes, bytes]],
) -> tuple[list[Record], list[tuple[int, int, str, bytes]]]:
    records: list[Record] = []
    undecodable: list[tuple[int, int, str, bytes]] = []
    for message in poll:
        raw = message.value or b""
        try:
            decoded = decode_event(raw)
        except EventDecodeError as exc:
            log.warning(
                "undecodable record kept for audit",
                extra={"partition": message.partition, "offset": message.offset},
            )
            undecodable.append((message.partition, message.offset, str(exc)[:500], raw))
            continue
        digest = hashlib.sha256(raw).hexdigest()
        records.append(Record(decoded, message.partition, message.offset, digest))
    return records, undecodable


def register_agent(app: TallyApp, tally: Tally) -> None:
    topic = app.topic(BALLOTS, key_serializer="raw", value_serializer="raw")
    app.agent(app.feed_polls(topic), name="tally")(tally.run)
    announce.register_announcer(app, lambda: tally.deps.pool)
