"""The loadgen's own count, and the published totals it must equal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from services.loadgen.traffic import Shot


@dataclass
class Tally:
    """Votes per (candidate, channel), ballots counted, ballots rejected by reason."""

    votes: Counter[tuple[str, str]] = field(default_factory=Counter)
    counted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.votes + other.votes, self.counted + other.counted, self.rejected + other.rejected
        )

    def settled(self, other: Tally) -> bool:
        return self.counted == other.counted and +self.rejected == +other.rejected

    def differences(self, published: Tally) -> list[str]:
        keys = sorted(set(self.votes) | set(published.votes))
        mine, theirs = self.votes, published.votes
        out = [
            f"{key[0]}/{key[1]}: expected {mine[key]}, published {theirs[key]}"
            for key in keys
            if mine[key] != theirs[key]
        ]
        if self.counted != published.counted:
            out.append(f"ballots counted: expected {self.counted}, published {published.counted}")
        for reason in sorted(set(+self.rejected) | set(+published.rejected)):
            expected, seen = self.rejected[reason], published.rejected[reason]
            if expected != seen:
                out.append(f"rejected {reason}: expected {expected}, published {seen}")
        return out

    @classmethod
    def of_snapshot(cls, snapshot: dict[str, Any] | None) -> Tally:
        if snapshot is None:
            return cls()
        votes: Counter[tuple[str, str]] = Counter()
        for candidate in snapshot["candidates"]:
            for channel, n in candidate["by_channel"].items():
                votes[(candidate["id"], channel)] += n
        rejected = Counter({k: int(v) for k, v in snapshot["ballots_rejected"].items()})
        return cls(votes, int(snapshot["ballots_counted"]), rejected)


@dataclass
class OwnCount:
    """What the system must publish, from the answers the loadgen got."""

    tally: Tally = field(default_factory=Tally)
    uncertain: int = 0  # accepted-kind shots whose fate nobody can know (never answered)

    def answered(self, shot: Shot) -> None:
        if shot.kind == "ballot":
            self.tally.counted += 1
            self.tally.votes.update((s, shot.channel) for s in shot.selections)
        elif shot.kind == "repeat":
            self.tally.rejected["limit_exceeded"] += 1

    def lost(self, shot: Shot) -> None:
        if shot.accepted:
            self.uncertain += 1


class Results:
    """The results API of the publish service."""

    def __init__(self, http: aiohttp.ClientSession, publish: str, campaign_id: str) -> None:
        self.http = http
        self.url = f"{publish}/v1/campaigns/{campaign_id}/results"

    async def latest(self) -> Tally:
        async with self.http.get(self.url) as response:
            if response.status == 404:
                return Tally()
            response.raise_for_status()
            return Tally.of_snapshot(await response.json())

    async def settle(self, expected: Tally, wait_at_most: float) -> tuple[Tally, float]:
        """Polls until the published ballot counts reach `expected`; returns what it saw last
        and how long it waited."""
        started, published = time.monotonic(), Tally()
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # publish restarting
                published = await self.latest()
            waited = time.monotonic() - started
            if expected.settled(published) or waited > wait_at_most:
                return published, waited
            await asyncio.sleep(0.1)
