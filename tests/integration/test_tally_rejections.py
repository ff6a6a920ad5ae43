"""Rejections on record: every refused ballot is stored with its reason, and snapshots
count them by reason (`ballots_rejected`)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg

from services.domain.ballot import Ballot, Cutoff
from services.domain.snapshot import contents
from services.publish.store import SnapshotStore
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.support.campaigns import make_campaign

NOW = datetime.now(UTC)
CAMPAIGN = make_campaign(
    "rej", candidates=("c1", "c2", "c3"), top_n=1, now=NOW, channels={"web": {}, "kiosk": {}}
)


def ballot(
    voter: str,
    picks: tuple[str, ...] = ("c1",),
    *,
    channel: str = "web",
    cast: timedelta = timedelta(0),
    campaign: str = "rej",
) -> Ballot:
    at = NOW + cast
    return Ballot(uuid.uuid4(), campaign, channel, voter, picks, at, at)  # type: ignore[arg-type]


EXPECTED = [
    (ballot("v1"), None),
    (ballot("v1", ("c2",)), "limit_exceeded"),
    (ballot("v2", ("c1", "c2", "c3")), "too_many_selections"),
    (ballot("v3", ("c1", "c1")), "duplicate_selection"),
    (ballot("v4", ("c7",)), "unknown_candidate"),
    (ballot("v5", channel="wechat"), "channel_closed"),
    (ballot("v6", cast=timedelta(hours=-2)), "campaign_not_open"),
    (ballot("v7", cast=timedelta(hours=2)), "campaign_closed"),
    (ballot("v8", campaign="nope"), "unknown_campaign"),
]


async def test_every_rejected_ballot_is_stored_with_its_reason_and_counted_by_reason(
    database: str,
) -> None:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        records = [Record(b, 0, i, "r" * 64) for i, (b, _) in enumerate(EXPECTED)]
        # behind the cut-off marker on partition 1 a ballot missed the final
        late = ballot("v9")
        records += [Record(Cutoff("rej", NOW), 1, 0, "m"), Record(late, 1, 1, "r" * 64)]
        await PostgresTallyStore(pool).apply(records, {"rej": CAMPAIGN}.get)
        rows = await pool.fetch("SELECT ballot_id, status, reason FROM ballots")
        stored = {r["ballot_id"]: (r["status"], r["reason"]) for r in rows}
        want = {b.ballot_id: ("rejected" if r else "counted", r) for b, r in EXPECTED}
        want[late.ballot_id] = ("rejected", "campaign_closed")
        assert stored == want

        snapshot = contents(CAMPAIGN, await SnapshotStore(pool).counts("rej"))
        by_reason = Counter(r for (s, r) in want.values() if s == "rejected" and r)
        del by_reason["unknown_campaign"]  # counted under its own (unknown) campaign id
        assert snapshot["ballots_rejected"] == dict(sorted(by_reason.items()))
        assert snapshot["ballots_counted"] == 1
        nope = await SnapshotStore(pool).counts("nope")
        assert nope.ballots_rejected == {"unknown_campaign": 1}
    finally:
        await pool.close()
