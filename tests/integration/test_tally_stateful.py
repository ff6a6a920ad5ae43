"""The tally store against a real PostgreSQL, driven by a Hypothesis state machine.

Invariant, after every step: the totals the publisher would publish (SnapshotStore.counts,
from the tallies and outcome views) equal a reference count of the topic prefix the tally
has ever stored — whatever mix of casting, producer duplicates, crashes (a batch rolled back
mid-transaction, or committed in Postgres but not in Kafka, so redelivered from the last
committed offset, possibly cut differently) and replays from offset 0 came before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.publish.store import SnapshotStore
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.support.campaigns import make_campaign

NOW = datetime.now(UTC)
CANDIDATES = ("c1", "c2", "c3")
PARTITIONS = 2
VOTERS = ("v0", "v1", "v2", "v3", "v4")


def campaign(cid: str) -> Campaign:
    return make_campaign(
        cid,
        candidates=CANDIDATES,
        now=NOW,
        limit={"per_voter": 2, "period": "campaign"},
        channels={"web": {}, "wechat": {}},
    )


class Crash(Exception):
    """The worker died before its transaction committed."""


class OneConnection:
    """A pool stand-in that lends one connection already inside a transaction, so the
    store's own transaction becomes a savepoint that the test can roll back."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self.conn


def reference(stored: Sequence[Ballot]) -> tuple[Counter[tuple[str, str]], Counter[str], int]:
    """Votes per (candidate, channel), rejections per reason, ballots counted."""
    votes: Counter[tuple[str, str]] = Counter()
    rejected: Counter[str] = Counter()
    used: Counter[str] = Counter()
    seen: set[uuid.UUID] = set()
    for b in stored:
        if b.ballot_id in seen:
            continue
        seen.add(b.ballot_id)
        if any(s not in CANDIDATES for s in b.selections):
            rejected["unknown_candidate"] += 1
        elif b.channel not in ("web", "wechat"):
            rejected["channel_closed"] += 1
        elif used[b.voter_key] >= 2:
            rejected["limit_exceeded"] += 1
        else:
            used[b.voter_key] += 1
            votes.update((s, b.channel) for s in b.selections)
    return votes, rejected, sum(used.values())


class TallyMachine(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop
    pool: asyncpg.Pool
    ballots = Bundle("ballots")

    @initialize()
    def fresh_campaign(self) -> None:
        self.campaign = campaign(f"sm-{uuid.uuid4().hex[:10]}")
        self.store = PostgresTallyStore(self.pool)
        self.topic: dict[int, list[Ballot]] = {p: [] for p in range(PARTITIONS)}
        self.committed = dict.fromkeys(range(PARTITIONS), 0)  # Kafka's committed offsets
        self.stored = dict.fromkeys(range(PARTITIONS), 0)  # highest end ever in Postgres

    def run(self, coro: Any) -> Any:
        """Runs a step on the test's event loop (the machine runs in a worker thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def campaigns(self, cid: str) -> Campaign | None:
        return self.campaign if cid == self.campaign.id else None

    def produce(self, ballot: Ballot) -> None:
        self.topic[VOTERS.index(ballot.voter_key) % PARTITIONS].append(ballot)

    def next_batch(self, partition: int, size: int) -> list[Record]:
        start = self.committed[partition]
        chunk = self.topic[partition][start : start + size]
        return [Record(b, partition, start + i, "r" * 64) for i, b in enumerate(chunk)]

    def store_batch(self, records: list[Record]) -> None:
        self.run(self.store.apply(records, self.campaigns))
        for r in records:
            self.stored[r.partition] = max(self.stored[r.partition], r.offset + 1)

    @rule(
        target=ballots,
        voter=st.sampled_from(VOTERS),
        channel=st.sampled_from(["web", "wechat", "kiosk"]),
        picks=st.lists(st.sampled_from([*CANDIDATES, "c9"]), min_size=1, max_size=2, unique=True),
    )
    def cast(self, voter: str, channel: str, picks: list[str]) -> Ballot:
        ballot = Ballot(
            uuid.uuid4(),
            self.campaign.id,
            channel,
            voter,
            tuple(picks),
            NOW,
            NOW,  # type: ignore[arg-type]
        )
        self.produce(ballot)
        return ballot

    @rule(ballot=ballots)
    def duplicate(self, ballot: Ballot) -> None:
        """The producer retried: the same ballot lands on the topic again."""
        self.produce(ballot)

    @rule(partition=st.integers(0, PARTITIONS - 1), size=st.integers(1, 8))
    def count_and_commit(self, partition: int, size: int) -> None:
        batch = self.next_batch(partition, size)
        self.store_batch(batch)
        self.committed[partition] += len(batch)

    @rule(size=st.integers(1, 8))
    def count_both_partitions_in_one_batch(self, size: int) -> None:
        batches = [self.next_batch(p, size) for p in range(PARTITIONS)]
        self.store_batch([r for batch in batches for r in batch])
        for p, batch in enumerate(batches):
            self.committed[p] += len(batch)

    @rule(partition=st.integers(0, PARTITIONS - 1), size=st.integers(1, 8))
    def crash_after_postgres_commit_before_offset_commit(self, partition: int, size: int) -> None:
        self.store_batch(self.next_batch(partition, size))  # redelivered from `committed`

    @rule(partition=st.integers(0, PARTITIONS - 1), size=st.integers(1, 8))
    def crash_mid_transaction(self, partition: int, size: int) -> None:
        batch = self.next_batch(partition, size)

        async def die_before_commit() -> None:
            async with self.pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        await PostgresTallyStore(OneConnection(conn)).apply(  # type: ignore[arg-type]
                            batch, self.campaigns
                        )
                        raise Crash
                except Crash:
                    pass

        self.run(die_before_commit())

    @rule()
    def replay_from_offset_zero(self) -> None:
        self.committed = dict.fromkeys(range(PARTITIONS), 0)

    @invariant()
    def published_totals_equal_the_reference_count(self) -> None:
        counts = self.run(SnapshotStore(self.pool).counts(self.campaign.id))
        stored = [b for p in range(PARTITIONS) for b in self.topic[p][: self.stored[p]]]
        votes, rejected, counted = reference(stored)
        assert {k: v for k, v in counts.votes.items() if v} == dict(votes)
        assert dict(counts.ballots_rejected) == dict(rejected)
        assert counts.ballots_counted == counted


async def test_casting_duplicating_crashing_and_replaying_keep_published_totals_exact(
    database: str,
) -> None:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    TallyMachine.loop, TallyMachine.pool = asyncio.get_running_loop(), pool
    try:
        await asyncio.to_thread(
            run_state_machine_as_test,
            TallyMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        await pool.close()
