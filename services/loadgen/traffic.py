"""The traffic model: voter sessions with retries, repeat voters and junk, each shot with the
outcome the ingest must answer. Pure: no I/O, seeded, so a run can be replayed."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from services.domain.campaign import Campaign

Kind = Literal["ballot", "retry", "repeat", "bad_selection", "bad_token"]
ACCEPTED: frozenset[Kind] = frozenset({"ballot", "retry", "repeat"})


@dataclass(frozen=True)
class Mix:
    """Shares of the traffic; each is a probability per voter session."""

    channels: tuple[str, ...] = ("web",)
    duplicate_rate: float = 0.05  # the client retries the same ballot_id
    repeat_rate: float = 0.05  # the voter casts again, over the limit
    invalid_rate: float = 0.02  # junk: selections the rules refuse, forged tokens


@dataclass(frozen=True)
class Shot:
    """One request; `voter` is a run-unique identity (never a real person's)."""

    kind: Kind
    channel: str
    voter: str
    ballot_id: uuid.UUID
    selections: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return self.kind in ACCEPTED


class Traffic:
    """Sessions for one campaign: a session is a voter's shots, sent in order."""

    def __init__(self, campaign: Campaign, mix: Mix, run_id: str, seed: int) -> None:
        self.campaign, self.mix, self.run_id = campaign, mix, run_id
        self.rng = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
        self.candidates = [c.id for c in campaign.candidates]
        self.voters = 0

    @property
    def shots_per_session(self) -> float:
        """Mean shots per session, to turn a request rate into a session rate."""
        m = self.mix
        repeat = m.repeat_rate * self.campaign.per_voter
        return m.invalid_rate + (1 - m.invalid_rate) * (1 + m.duplicate_rate + repeat)

    def sessions(self) -> Iterator[list[Shot]]:
        while True:
            yield self.session()

    def session(self) -> list[Shot]:
        self.voters += 1
        channel = self.rng.choice(self.mix.channels)
        voter = f"lg-{self.run_id}-{self.voters}"
        if self.rng.random() < self.mix.invalid_rate:
            return [self._junk(channel, voter)]
        first = self._ballot("ballot", channel, voter)
        shots = [first]
        if self.rng.random() < self.mix.duplicate_rate:
            shots.append(Shot("retry", channel, voter, first.ballot_id, first.selections))
        if self.rng.random() < self.mix.repeat_rate:
            # a voter over the limit: per_voter more ballots, the last of them refused
            extra = self.campaign.per_voter
            shots += [self._ballot("ballot", channel, voter) for _ in range(extra - 1)]
            shots.append(self._ballot("repeat", channel, voter))
        return shots

    def _ballot(self, kind: Kind, channel: str, voter: str) -> Shot:
        c = self.campaign
        count = self.rng.randint(c.min_selections, c.max_selections)
        picks = tuple(self.rng.sample(self.candidates, count))
        return Shot(kind, channel, voter, uuid.uuid4(), picks)

    def _junk(self, channel: str, voter: str) -> Shot:
        if self.rng.random() < 0.5:
            return Shot("bad_token", channel, voter, uuid.uuid4(), (self.candidates[0],))
        bad = [("no-such-candidate",), (self.candidates[0], self.candidates[0])]
        if self.campaign.max_selections < len(self.candidates):
            bad.append(tuple(self.candidates[: self.campaign.max_selections + 1]))
        return Shot("bad_selection", channel, voter, uuid.uuid4(), self.rng.choice(bad))
