"""decide_batch, the pure core of the tally, against an independent reference count.

Invariant: however the records of the topic are duplicated (producer retries), redelivered
(crash before the offset commit) and cut into batches, the counted totals equal a reference
count that takes each ballot_id once, in order of first appearance, and applies the rules.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.ballot import Ballot
from services.domain.campaign import parse_campaign
from services.tally.counting import Record, decide_batch

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CANDIDATES = ("c1", "c2", "c3", "c4")
PER_VOTER = 2
CAMPAIGN = parse_campaign(
    {
        "id": "prop",
        "title": "t",
        "organizer": "o",
        "question": "q",
        "timezone": "UTC",
        "opens_at": (NOW - timedelta(days=1)).isoformat(),
        "closes_at": (NOW + timedelta(days=1)).isoformat(),
        "top_n": 2,
        "ballot": {"min_selections": 1, "max_selections": 2},
        "limit": {"per_voter": PER_VOTER, "period": "campaign"},
        "candidates": [{"id": c, "title": c, "unit": "u"} for c in CANDIDATES],
    }
)

ballots = st.builds(
    lambda voter, picks: Ballot(uuid.uuid4(), "prop", "web", voter, tuple(picks), NOW, NOW),
    st.sampled_from(["v1", "v2", "v3"]),
    st.lists(st.sampled_from([*CANDIDATES, "c9"]), min_size=0, max_size=3),
)


@st.composite
def deliveries(draw: st.DrawFn) -> list[Ballot]:
    """A topic: every ballot once, plus duplicates of earlier records anywhere after them."""
    topic: list[Ballot] = list(draw(st.lists(ballots, min_size=1, max_size=25)))
    for _ in range(draw(st.integers(0, 15))):
        original = draw(st.integers(0, len(topic) - 1))
        topic.insert(draw(st.integers(original + 1, len(topic))), topic[original])
    return topic


def reference(topic: Sequence[Ballot]) -> tuple[Counter[str], Counter[str]]:
    """Votes per candidate and rejections per reason, counted without the tally's code."""
    votes: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    counted_per_voter: Counter[str] = Counter()
    seen: set[uuid.UUID] = set()
    for b in topic:
        if b.ballot_id in seen:
            continue
        seen.add(b.ballot_id)
        if len(set(b.selections)) != len(b.selections):
            rejected["duplicate_selection"] += 1
        elif not set(b.selections) <= set(CANDIDATES):
            rejected["unknown_candidate"] += 1
        elif len(b.selections) > 2:
            rejected["too_many_selections"] += 1
        elif not b.selections:
            rejected["too_few_selections"] += 1
        elif counted_per_voter[b.voter_key] >= PER_VOTER:
            rejected["limit_exceeded"] += 1
        else:
            counted_per_voter[b.voter_key] += 1
            votes.update(b.selections)
    return votes, rejected


class Store:
    """What Postgres keeps between batches: ids stored, usage, and the counts."""

    def __init__(self) -> None:
        self.known: set[uuid.UUID] = set()
        self.usage: Counter[tuple[str, str]] = Counter()
        self.votes: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    def apply(self, batch: Sequence[Record]) -> None:
        decisions = decide_batch(batch, {"prop": CAMPAIGN}.get, self.known, self.usage, set())
        for fate, _ in decisions.fates:
            self.known.add(fate.ballot.ballot_id)
            if fate.status == "counted":
                self.usage[(fate.ballot.voter_key, fate.period)] += 1
                self.votes.update(fate.ballot.selections)
            else:
                self.rejected[fate.reason or ""] += 1


def as_records(topic: Sequence[Ballot]) -> list[Record]:
    return [Record(b, 0, offset, "r") for offset, b in enumerate(topic)]


@settings(max_examples=300, deadline=None)
@given(topic=deliveries(), data=st.data())
def test_duplicates_redeliveries_and_batch_cuts_never_change_the_totals(
    topic: list[Ballot], data: st.DataObject
) -> None:
    records = as_records(topic)
    store = Store()
    committed = 0  # the consumer's committed offset
    while committed < len(records):
        end = data.draw(st.integers(committed + 1, len(records)), label="batch end")
        store.apply(records[committed:end])  # the transaction commits ...
        if data.draw(st.booleans(), label="crash before the offset commit"):
            redelivered_from = data.draw(st.integers(0, committed), label="restart at")
            store.apply(records[redelivered_from:end])  # ... and the batch comes again
        committed = end
    votes, rejected = reference(topic)
    assert store.votes == votes
    assert store.rejected == rejected


@given(topic=deliveries())
def test_one_batch_decides_like_any_later_replay_of_the_whole_topic(topic: list[Ballot]) -> None:
    store = Store()
    store.apply(as_records(topic))
    before = (Counter(store.votes), Counter(store.rejected))
    store.apply(as_records(topic))  # replay from offset 0
    assert (store.votes, store.rejected) == before == reference(topic)


def test_a_ballot_id_seen_before_keeps_its_first_fate_and_counts_as_a_duplicate() -> None:
    first = Ballot(uuid.uuid4(), "prop", "web", "v1", ("c1",), NOW, NOW)
    again = Ballot(first.ballot_id, "prop", "web", "v1", ("c2",), NOW, NOW)
    decisions = decide_batch(as_records([first, again]), {"prop": CAMPAIGN}.get, set(), {}, set())
    assert [f.ballot.selections for f, _ in decisions.fates] == [("c1",)]
    assert decisions.duplicates == 1
