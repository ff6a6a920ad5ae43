"""Synthetic ballots for the demo campaign, encoded exactly as ingest puts them on Kafka."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from schemas.events import encode_ballot
from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.domain.voters import voter_key


def make_ballots(campaign: Campaign, count: int, seed: int = 1) -> list[Ballot]:
    rng = random.Random(seed)
    ids = [c.id for c in campaign.candidates]
    now = datetime.now(UTC)
    return [
        Ballot(
            ballot_id=uuid.uuid4(),
            campaign_id=campaign.id,
            channel="web",
            voter_key=voter_key(b"bench", campaign.id, f"web:bench-{seed}-{i}"),
            selections=tuple(rng.sample(ids, rng.randint(1, campaign.max_selections))),
            cast_at=now,
            received_at=now,
            meta={"ip_prefix": "127.0.0.0/24"},
        )
        for i in range(count)
    ]


def encoded(ballots: list[Ballot]) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs as ingest produces them."""
    return [(b.voter_key.encode(), encode_ballot(b)) for b in ballots]
