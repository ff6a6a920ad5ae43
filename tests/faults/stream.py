"""A steady stream of ballots straight onto `ballots`, with an independent expected count.

Each voter has fixed selections and channel, so the expected totals do not depend on the
order in which one voter's ballots are decided: a voter's first valid ballot counts, the
later ones are `limit_exceeded` (one ballot per voter). Some ballots name an unknown
candidate (`unknown_candidate`), and some records are re-sent byte for byte, as a producer
retry does (the same ballot_id, counted at most once).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.events import encode_ballot
from services.domain.ballot import Ballot, Channel
from services.domain.campaign import Campaign, parse_campaign
from services.runtime.kafka import BALLOTS

CANDIDATES = tuple(f"c{i:02d}" for i in range(1, 26))
CHANNELS: tuple[Channel, ...] = ("web", "wechat", "kiosk")


def fault_campaign(cid: str) -> Campaign:
    now = datetime.now(UTC).replace(microsecond=0)
    return parse_campaign(
        {
            "id": cid,
            "title": "fault test",
            "organizer": "tests",
            "question": "q",
            "timezone": "Asia/Shanghai",
            "opens_at": (now - timedelta(hours=1)).isoformat(),
            "closes_at": (now + timedelta(days=1)).isoformat(),
            "top_n": 10,
            "ballot": {"min_selections": 1, "max_selections": 10},
            "candidates": [{"id": c, "title": c, "unit": "u"} for c in CANDIDATES],
        }
    )


@dataclass
class Expected:
    votes: Counter[tuple[str, str]]
    counted: int
    rejected: dict[str, int]


@dataclass
class BallotStream:
    producer: AIOKafkaProducer
    campaign: Campaign
    voters: int = 3000
    rng: random.Random = field(default_factory=lambda: random.Random(20260501))
    sent: dict[uuid.UUID, Ballot] = field(default_factory=dict)  # acked, distinct
    raw: list[tuple[bytes, bytes]] = field(default_factory=list)
    records: int = 0  # ballot records acked, re-sends included

    def _voter(self, n: int) -> tuple[str, tuple[str, ...], Channel]:
        key = hashlib.sha256(f"{self.campaign.id}:{n}".encode()).hexdigest()
        picks = random.Random(n).sample(CANDIDATES, 1 + n % 10)
        return key, tuple(picks), CHANNELS[n % 3]

    def _next(self) -> tuple[bytes, bytes]:
        roll = self.rng.random()
        if roll < 0.1 and self.raw:
            return self.rng.choice(self.raw)  # a producer retry: the same record again
        key, picks, channel = self._voter(self.rng.randrange(self.voters))
        if roll < 0.2:
            picks = (*picks[:-1], "c99")  # refused by the tally: unknown_candidate
        now = datetime.now(UTC)
        ballot = Ballot(uuid.uuid4(), self.campaign.id, channel, key, picks, now, now)
        value = encode_ballot(ballot)
        self.sent[ballot.ballot_id] = ballot
        return key.encode(), value

    async def burst(self, size: int) -> None:
        """Sends `size` records and waits for every ack (acks=all)."""
        records = [self._next() for _ in range(size)]
        pending = [await self.producer.send(BALLOTS, v, key=k) for k, v in records]
        await asyncio.gather(*pending)
        self.raw.extend(records)
        self.records += size

    async def run(self, stop: asyncio.Event, per_tick: int = 10, tick: float = 0.05) -> None:
        """About per_tick / tick ballots a second until `stop` is set."""
        while not stop.is_set():
            await self.burst(per_tick)
            await asyncio.sleep(tick)  # pacing of the stream, not waiting for a result

    def expected(self) -> Expected:
        votes: Counter[tuple[str, str]] = Counter()
        voters: set[str] = set()
        valid = invalid = 0
        for ballot in self.sent.values():
            if "c99" in ballot.selections:
                invalid += 1
                continue
            valid += 1
            if ballot.voter_key not in voters:
                voters.add(ballot.voter_key)
                votes.update((c, ballot.channel) for c in ballot.selections)
        rejected = {"limit_exceeded": valid - len(voters), "unknown_candidate": invalid}
        return Expected(votes, len(voters), {k: v for k, v in rejected.items() if v})


def as_dict(expected: Expected) -> dict[str, Any]:
    return {
        "votes": dict(expected.votes),
        "counted": expected.counted,
        "rejected": expected.rejected,
    }


@asynccontextmanager
async def streaming(stream: BallotStream) -> AsyncIterator[None]:
    """Runs the stream in the background for the block; it ends with the last burst acked."""
    stop = asyncio.Event()
    task = asyncio.create_task(stream.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task
