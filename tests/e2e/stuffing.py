"""Honest voters and three kinds of vote stuffing, over the web channel of a running system.

Each voter connects from its own loopback address (all of 127.0.0.0/8 reaches the ingest
port), so the ingest sees real, distinct client networks: honest voters from many /24s, a
click farm from one. Tokens are signed as the site's login would sign them; `iat` is when the
account signed in (minutes ago for settled voters, just now for fresh accounts).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from tests.support.system import System

CANDIDATES = [f"c{i:02}" for i in range(1, 26)]


@dataclass(frozen=True)
class Cast:
    ballot_id: str
    kind: str  # honest | farm | burst | fresh
    selections: tuple[str, ...]


@dataclass
class Crowd:
    system: System
    campaign_id: str
    rng: random.Random = field(default_factory=lambda: random.Random(10))
    cast: list[Cast] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def token(self, signed_in_ago: float) -> str:
        now = int(time.time())
        claims = {
            "sub": f"voter-{uuid.uuid4().hex}",
            "iat": now - int(signed_in_ago),
            "exp": now + 900,
        }
        return jwt.encode(claims, self.system.secret("web_jwt_secret"), algorithm="HS256")

    def vote(
        self,
        kind: str,
        address: str,
        selections: list[str],
        signed_in_ago: float = 600,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ballot_id = str(uuid.uuid4())
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(transport=transport, timeout=15) as client:
            response = client.post(
                f"{self.system.ingest}/v1/campaigns/{self.campaign_id}/ballots",
                json={"selections": selections, "ballot_id": ballot_id},
                headers={"Authorization": f"Bearer {self.token(signed_in_ago)}", **(headers or {})},
            )
        if response.status_code == 202:
            with self._lock:
                self.cast.append(Cast(ballot_id, kind, tuple(selections)))
        return response

    def honest_ballot(self) -> tuple[str, list[str]]:
        with self._lock:
            a, b, c = (
                self.rng.randrange(1, 250),
                self.rng.randrange(256),
                self.rng.randrange(1, 255),
            )
            address = f"127.{a}.{b}.{c}"
            return address, self.rng.sample(CANDIDATES, self.rng.randint(1, 10))

    def honest(self, count: int, per_second: float) -> None:
        """Paced like a real audience (a load shape, not a wait for a condition)."""
        started = time.monotonic()
        for n in range(count):
            address, selections = self.honest_ballot()
            assert self.vote("honest", address, selections).status_code == 202
            ahead = started + (n + 1) / per_second - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def farm(self, count: int, selections: list[str]) -> None:
        """A click farm: one /24, identical selections, settled accounts."""
        for n in range(count):
            assert self.vote("farm", f"127.66.6.{n + 1}", selections).status_code == 202

    def burst(self, count: int, candidate: str) -> None:
        """Many networks, one favourite: bought votes for one candidate."""

        def one(n: int) -> None:
            others = self.rng.sample([c for c in CANDIDATES if c != candidate], 1 + n % 3)
            address = f"127.{200 + n % 50}.{n}.9"
            assert self.vote("burst", address, [candidate, *others]).status_code == 202

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(count)))

    def fresh(self, count: int) -> None:
        """Accounts created seconds before they vote."""
        for n in range(count):
            address, selections = f"127.99.{n}.1", self.rng.sample(CANDIDATES, 3)
            assert self.vote("fresh", address, selections, signed_in_ago=0).status_code == 202

    def of(self, kind: str) -> list[Cast]:
        return [c for c in self.cast if c.kind == kind]


def tally(ballots: list[Cast]) -> Counter[str]:
    """The independent count: votes per candidate from the ballots the test knows it cast."""
    votes: Counter[str] = Counter()
    for ballot in ballots:
        votes.update(ballot.selections)
    return votes


def results_votes(snapshot: dict[str, Any]) -> Counter[str]:
    return Counter({c["id"]: c["votes"] for c in snapshot["candidates"] if c["votes"]})
