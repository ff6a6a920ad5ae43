"""`votestream recount` against a real database: clean when all agrees, and a tampered
tally row or snapshot shows up as a row of the difference table with a non-zero exit."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.support.campaigns import make_campaign
from tests.support.recount import run_recount

NOW = datetime.now(UTC).replace(second=30)
CAMPAIGN = make_campaign("recount-it", candidates=("c1", "c2", "c3"), now=NOW)


def ballot(voter: str, picks: tuple[str, ...], channel: str, minute: int) -> Ballot:
    at = NOW - timedelta(minutes=minute)
    key = hashlib.sha256(voter.encode()).hexdigest()
    return Ballot(uuid.uuid4(), CAMPAIGN.id, channel, key, picks, at, at)  # type: ignore[arg-type]


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database, min_size=1, max_size=2)
    yield created
    await created.close()


async def count_and_publish(pool: asyncpg.Pool) -> None:
    ballots = [
        ballot("a", ("c1", "c2"), "web", 0),
        ballot("b", ("c1",), "wechat", 1),
        ballot("c", ("c3",), "kiosk", 2),
        ballot("a", ("c3",), "web", 0),  # limit_exceeded
        ballot("d", ("c9",), "web", 0),  # unknown_candidate
    ]
    records = [Record(b, 0, i, "r" * 64) for i, b in enumerate(ballots)]
    await PostgresTallyStore(pool).apply(records, {CAMPAIGN.id: CAMPAIGN}.get)
    await publish(pool, CAMPAIGN)


async def publish(pool: asyncpg.Pool, campaign: Campaign) -> None:
    async def no_cutoff(_: Campaign) -> int:
        raise AssertionError("open campaign: no cut-off")

    assert await Publisher(SnapshotStore(pool), Ed25519PrivateKey.generate(), no_cutoff).publish(
        campaign
    )


async def test_recount_agrees_with_untouched_tallies_and_snapshot(
    pool: asyncpg.Pool, database: str
) -> None:
    await count_and_publish(pool)
    result = run_recount(database, CAMPAIGN.id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        f"recount of {CAMPAIGN.id}: 5 ballots, 4 votes in 4 windows"
        " agree with the tallies and snapshot #1"
    )


async def test_a_tampered_tally_row_is_shown_with_both_numbers_and_fails(
    pool: asyncpg.Pool, database: str
) -> None:
    await count_and_publish(pool)
    window = (NOW - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")
    await pool.execute(
        "UPDATE tallies SET votes = votes + 5 WHERE candidate_id = 'c1' AND channel = 'wechat'"
    )
    result = run_recount(database, CAMPAIGN.id)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["source", "what", "recount", "published", "diff"]
    assert lines[1].split() == ["tallies", "window", *window.split(), "c1/wechat", "1", "6", "+5"]
    assert lines[-1] == f"recount of {CAMPAIGN.id}: 1 difference(s)"

    await publish(pool, CAMPAIGN)  # the next snapshot carries the tampered sum
    lines = run_recount(database, CAMPAIGN.id).stdout.splitlines()
    assert [line.split() for line in lines[2:-1]] == [
        ["snapshot", "#2", "c1", "votes", "2", "7", "+5"],
        ["snapshot", "#2", "c1/wechat", "1", "6", "+5"],
    ]


async def test_a_ballot_record_changed_behind_the_tally_shows_in_every_source(
    pool: asyncpg.Pool, database: str
) -> None:
    await count_and_publish(pool)
    await pool.execute(
        "UPDATE ballots SET status = 'counted', reason = NULL WHERE reason = 'limit_exceeded'"
    )
    result = run_recount(database, CAMPAIGN.id)
    assert result.returncode == 1
    sources = {line.split()[0] for line in result.stdout.splitlines()[1:-1]}
    assert sources == {"tallies", "intake", "snapshot"}
    assert "ballots_rejected limit_exceeded" in result.stdout
