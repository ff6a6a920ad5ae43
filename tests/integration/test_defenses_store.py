"""Defences in the tally's transaction and the organiser's decisions, on a real PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.ingest.ballots import BallotDesk
from services.ingest.held import HeldBallots
from services.ingest.intake import RecentBallots
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.support.campaigns import make_campaign

NOW = datetime.now(UTC)
FARM = "198.51.100.0/24"
DEFENSES = {
    "rules": [
        {"kind": "identical_selections", "window": "60s", "min_ballots": 3, "action": "hold"},
        {"kind": "fresh_voter", "min_age": "10s", "action": "reject"},
    ]
}


def campaign(cid: str, defenses: dict[str, Any] | None) -> Campaign:
    extra = {"defenses": defenses} if defenses is not None else {}
    return make_campaign(cid, now=NOW, **extra)


CAMPAIGNS = {"guarded": campaign("guarded", DEFENSES), "plain": campaign("plain", None)}


def record(
    cid: str, n: int, prefix: str, selections: tuple[str, ...], iat_age: float = 600
) -> Record:
    at = NOW + timedelta(seconds=n * 0.5)
    meta = {"ip_prefix": prefix, "token_iat": (at - timedelta(seconds=iat_age)).isoformat()}
    voter = hashlib.sha256(f"{cid}:{prefix}:{n}".encode()).hexdigest()
    ballot = Ballot(uuid.uuid4(), cid, "web", voter, selections, at, at, meta)
    return Record(ballot, n % 2, n, "r" * 64)


async def totals(pool: asyncpg.Pool, cid: str) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT candidate_id, votes FROM candidate_totals WHERE campaign_id = $1", cid
    )
    return {r["candidate_id"]: r["votes"] for r in rows}


async def outcomes(pool: asyncpg.Pool, cid: str) -> dict[tuple[str, str], int]:
    rows = await pool.fetch(
        "SELECT status, reason, ballots FROM outcome_totals WHERE campaign_id = $1", cid
    )
    return {(r["status"], r["reason"]): r["ballots"] for r in rows}


@pytest.fixture
async def pool(database: str) -> Any:
    created = await asyncpg.create_pool(database)
    yield created
    await created.close()


async def test_a_farm_is_held_from_the_threshold_and_a_fresh_voter_rejected(pool: Any) -> None:
    store = PostgresTallyStore(pool)
    farm = [record("guarded", n, FARM, ("c1", "c2")) for n in range(5)]
    honest = [record("guarded", 10 + n, f"10.0.{n}.0/24", ("c1", "c2")) for n in range(3)]
    fresh = [record("guarded", 20, "10.9.0.0/24", ("c3",), iat_age=2)]
    written = await store.apply([*farm, *honest, *fresh], CAMPAIGNS.get)
    assert sorted(r["status"] for r in written.rows).count("held") == 3
    assert await totals(pool, "guarded") == {"c1": 5, "c2": 5}  # 2 farm + 3 honest
    assert await outcomes(pool, "guarded") == {
        ("counted", ""): 5,
        ("held", "identical_selections"): 3,
        ("rejected", "suspected_fresh_voter"): 1,
    }
    rows = await pool.fetch("SELECT rule, subject, ballots, evidence FROM detections ORDER BY rule")
    assert [(r["rule"], r["subject"], r["ballots"]) for r in rows] == [
        ("fresh_voter", "10.9.0.0/24", 1),
        ("identical_selections", f"{FARM} c1,c2", 3),
    ]
    assert {d.detection.rule.kind for d in written.detections} == {
        "fresh_voter",
        "identical_selections",
    }


async def test_replaying_a_defended_batch_records_nothing_twice(pool: Any) -> None:
    store = PostgresTallyStore(pool)
    batch = [record("guarded", n, FARM, ("c4",)) for n in range(6)]
    await store.apply(batch[:4], CAMPAIGNS.get)
    await store.apply(batch, CAMPAIGNS.get)
    before = (await totals(pool, "guarded"), await outcomes(pool, "guarded"))
    again = await store.apply(batch, CAMPAIGNS.get)
    assert again.rows == [] and again.detections == []
    assert (await totals(pool, "guarded"), await outcomes(pool, "guarded")) == before
    assert await pool.fetchval("SELECT sum(ballots) FROM detections") == 4
    assert await pool.fetchval("SELECT count(*) FROM held_ballots") == 4


async def test_a_campaign_without_defenses_counts_the_same_farm(pool: Any) -> None:
    store = PostgresTallyStore(pool)
    await store.apply(
        [record("plain", n, FARM, ("c1",), iat_age=1) for n in range(6)], CAMPAIGNS.get
    )
    assert await totals(pool, "plain") == {"c1": 6}
    assert await pool.fetchval("SELECT count(*) FROM detections") == 0


async def test_release_counts_once_and_reject_refuses_with_an_audit_row(pool: Any) -> None:
    store = PostgresTallyStore(pool)
    await store.apply([record("guarded", n, FARM, ("c1", "c2")) for n in range(6)], CAMPAIGNS.get)
    held = HeldBallots(pool)
    waiting = [as_uuid(h["ballot_id"]) for h in await held.held("guarded", None, 100)]
    assert len(waiting) == 4 and await totals(pool, "guarded") == {"c1": 2, "c2": 2}
    desk = BallotDesk(NO_SINK, pool, RecentBallots())
    fates = [await desk.fate(b) for b in waiting]  # the voter sees nothing of the hold
    assert {(f["status"], f["reason"]) for f in fates} == {("pending", None)}
    released = await held.decide(
        "guarded", "release", actor="ops", reason="checked", ballot_ids=waiting[:2]
    )
    assert released.ballot_ids == sorted(waiting[:2])
    again = await held.decide(
        "guarded", "release", actor="ops", reason="twice", ballot_ids=waiting[:2]
    )
    assert again.ballot_ids == []
    rejected = await held.decide(
        "guarded", "reject", actor="ops", reason="farm", rule="identical_selections"
    )
    assert rejected.ballot_ids == sorted(waiting[2:])
    assert await totals(pool, "guarded") == {"c1": 4, "c2": 4}
    assert await outcomes(pool, "guarded") == {
        ("counted", ""): 4,
        ("held", "identical_selections"): 0,
        ("rejected", "organiser_rejected"): 2,
    }
    audit = await held.decisions("guarded", 0, 10)
    assert [(a["decision"], a["actor"]) for a in audit] == [("release", "ops")] * 2 + [
        ("reject", "ops")
    ] * 2
    assert await held.held("guarded", None, 100) == []
    fates = [await desk.fate(b) for b in waiting]
    assert {f["ballot_id"]: (f["status"], f["reason"]) for f in fates} == {
        **{str(b): ("counted", None) for b in waiting[:2]},
        **{str(b): ("rejected", "organiser_rejected") for b in waiting[2:]},
    }


async def test_the_audit_table_refuses_update_and_delete(pool: Any) -> None:
    store = PostgresTallyStore(pool)
    await store.apply([record("guarded", n, FARM, ("c3",)) for n in range(3)], CAMPAIGNS.get)
    await HeldBallots(pool).decide("guarded", "reject", actor="ops", reason="farm")
    for statement in (
        "UPDATE defense_audit SET actor = 'someone else'",
        "DELETE FROM defense_audit",
        "TRUNCATE defense_audit",
    ):
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await pool.execute(statement)
    assert await pool.fetchval("SELECT count(*) FROM defense_audit WHERE actor = 'ops'") == 1


class NoSink:
    async def submit(self, ballot: Ballot) -> None:
        raise AssertionError("reading a fate publishes nothing")


NO_SINK = NoSink()


def as_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)
