"""Deciding a batch: the pure step between reading state and writing it.

Given the records of a batch (in partition order), the ballot ids already stored, the voters'
usage so far and the cut-off markers already passed, it returns what to write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from services.domain.ballot import Ballot, Cutoff, Fate
from services.domain.campaign import Campaign
from services.domain.rules import decide


@dataclass(frozen=True)
class Record:
    """One decoded event with where it came from and the digest of its bytes."""

    event: Ballot | Cutoff
    partition: int
    offset: int
    receipt: str


@dataclass
class Decisions:
    fates: list[tuple[Fate, Record]] = field(default_factory=list)
    marks: set[tuple[str, int]] = field(default_factory=set)  # (campaign, partition) passed
    duplicates: int = 0


def decide_batch(
    records: Iterable[Record],
    campaigns: Callable[[str], Campaign | None],
    known: set[UUID],
    usage: Mapping[tuple[str, str], int],
    marks: set[tuple[str, int]],
) -> Decisions:
    """Fates for the new ballots; a ballot_id seen before keeps its first fate."""
    out = Decisions()
    used = dict(usage)
    seen = set(known)
    passed = set(marks)
    for record in records:
        event = record.event
        if isinstance(event, Cutoff):
            key = (event.campaign_id, record.partition)
            if key not in passed:
                passed.add(key)
                out.marks.add(key)
            continue
        if event.ballot_id in seen:
            out.duplicates += 1
            continue
        seen.add(event.ballot_id)
        cut_off = (event.campaign_id, record.partition) in passed
        fate = decide(campaigns(event.campaign_id), event, used, cut_off=cut_off)
        if fate.status == "counted":
            bucket = (event.voter_key, fate.period)
            used[bucket] = used.get(bucket, 0) + 1
        out.fates.append((fate, record))
    return out
