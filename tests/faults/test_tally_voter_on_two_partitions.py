"""Two tally workers, one voter's ballots on a partition of each: the limit still holds.

When partitions are added mid-campaign a voter's key hashes to a new partition, so ballots
of one voter can sit on two partitions owned by two workers. The test produces each voter's
two ballots straight onto one partition of each worker, holds both workers' batch
transactions at the same moment (an exclusive lock on `cutoff_marks`, which every batch
reads after its voters' usage) and lets them go together: each voter counts once.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from schemas.events import encode_ballot
from services.domain.ballot import Ballot
from services.runtime.kafka import BALLOTS
from tests.faults.checks import stored
from tests.faults.conftest import PARTITIONS, Rig
from tests.support.waiting import eventually, eventually_async

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
VOTERS = 30


LAG = re.compile(r'^votestream_tally_consumer_lag\{partition="(\d+)"', re.MULTILINE)


def owned(rig: Rig, name: str) -> set[int]:
    """The partitions a worker reports lag for: the ones it holds now."""
    text = httpx.get(f"http://127.0.0.1:{rig.workers.ports[name]}/metrics", timeout=5).text
    return {int(p) for p in LAG.findall(text)}


def split(rig: Rig) -> tuple[int, int] | None:
    """A partition of w1 and one of w2, once the group has shared all partitions out."""
    first, second = owned(rig, "w1"), owned(rig, "w2")
    if not first or not second or first & second or len(first | second) != PARTITIONS:
        return None
    return min(first), min(second)


async def test_a_voter_with_ballots_on_two_workers_partitions_counts_once(rig: Rig) -> None:
    for name in ("w1", "w2"):
        rig.workers.start(name)
    for name in ("w1", "w2"):
        await asyncio.to_thread(rig.workers.wait_ready, name)
    shared = await asyncio.to_thread(eventually, lambda: split(rig), 90, "partitions shared")
    assert shared is not None  # eventually returns only a truthy value
    p1, p2 = shared
    campaign = rig.stream.campaign
    keys = [hashlib.sha256(f"{campaign.id}:two:{n}".encode()).hexdigest() for n in range(VOTERS)]
    now = datetime.now(UTC)
    async with rig.pool.acquire() as gate, gate.transaction():
        await gate.execute("LOCK TABLE cutoff_marks IN ACCESS EXCLUSIVE MODE")
        sends = []
        for key in keys:
            for partition in (p1, p2):
                ballot = Ballot(uuid.uuid4(), campaign.id, "web", key, ("c01",), now, now)
                value = encode_ballot(ballot)
                sends.append(
                    rig.producer.send(BALLOTS, value, key=key.encode(), partition=partition)
                )
        await asyncio.gather(*[await s for s in sends])

        async def both_batches_waiting() -> bool:
            waiting = await rig.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            return bool(waiting >= 2)

        await eventually_async(both_batches_waiting, 60, "a batch of each worker waiting")

    async def all_decided() -> bool:
        return await stored(rig.pool, campaign.id) == 2 * VOTERS

    await eventually_async(all_decided, 120, "every ballot decided")
    rows = await rig.pool.fetch(
        "SELECT voter_key, status, reason, source_partition FROM ballots WHERE campaign_id = $1",
        campaign.id,
    )
    counted = Counter(r["voter_key"] for r in rows if r["status"] == "counted")
    assert counted == Counter(dict.fromkeys(keys, 1))
    assert Counter((r["status"], r["reason"]) for r in rows) == {
        ("counted", None): VOTERS,
        ("rejected", "limit_exceeded"): VOTERS,
    }
    assert {r["source_partition"] for r in rows} == {p1, p2}
    votes = await rig.pool.fetchval(
        "SELECT sum(votes) FROM tallies WHERE campaign_id = $1", campaign.id
    )
    assert votes == VOTERS
