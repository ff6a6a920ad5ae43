"""The stuffing detectors, as pure functions over windows of ballots.

Each takes the rule, what came before (`history`: ballots already stored, oldest first) and
the new ballots of a batch (in order), and returns the detections: which new ballots matched,
and the evidence — counts, window, network prefix or kiosk — never a voter identity.
`screen` runs a campaign's rules and gives each matched ballot its strongest action.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from services.domain.defenses import Action, Defenses, Rule, strongest


@dataclass(frozen=True)
class Seen:
    """What the detectors need of a ballot: no voter key, no raw address."""

    ballot_id: UUID
    selections: tuple[str, ...]
    source: str | None  # the network prefix (web) or 'kiosk:<device>'; None for WeChat
    cast_at: datetime
    received_at: datetime
    token_iat: datetime | None = None


@dataclass(frozen=True)
class Detection:
    rule: Rule
    subject: str  # the candidate, the prefix and selections, or the prefix
    window_start: datetime
    window_end: datetime
    ballot_ids: tuple[UUID, ...]
    evidence: Mapping[str, Any]


@dataclass
class Screening:
    detections: list[Detection] = field(default_factory=list)
    verdicts: dict[UUID, tuple[Action, str]] = field(default_factory=dict)  # -> action, rule


def source_of(meta: Mapping[str, Any]) -> str | None:
    """The network prefix a web ballot came from, or the kiosk that took it."""
    if meta.get("ip_prefix"):
        return str(meta["ip_prefix"])
    return f"kiosk:{meta['device_id']}" if meta.get("device_id") else None


def fresh_voters(rule: Rule, batch: Sequence[Seen]) -> list[Detection]:
    """Ballots cast less than `min_age` after the voter's token was issued, by prefix."""
    min_age = rule.param("min_age")
    groups: dict[str, list[Seen]] = defaultdict(list)
    for seen in batch:
        if seen.token_iat is not None and seen.cast_at - seen.token_iat < min_age:
            groups[seen.source or "-"].append(seen)
    return [
        _detection(
            rule, prefix, found, {"prefix": prefix, "min_age_seconds": rule.seconds("min_age")}
        )
        for prefix, found in groups.items()
    ]


def identical_selections(
    rule: Rule, history: Sequence[Seen], batch: Sequence[Seen]
) -> list[Detection]:
    """Ballots with the same selections from one prefix or kiosk, `min_ballots`+ in `window`."""
    window, least = rule.param("window"), rule.param("min_ballots")
    times: dict[tuple[str, tuple[str, ...]], list[datetime]] = defaultdict(list)
    for seen in history:
        if seen.source is not None:
            times[(seen.source, tuple(sorted(seen.selections)))].append(seen.cast_at)
    groups: dict[tuple[str, tuple[str, ...]], list[Seen]] = defaultdict(list)
    for seen in batch:
        if seen.source is None:
            continue
        key = (seen.source, tuple(sorted(seen.selections)))
        times[key].append(seen.cast_at)
        if sum(1 for t in times[key] if seen.cast_at - window <= t <= seen.cast_at) >= least:
            groups[key].append(seen)
    return [
        _detection(
            rule,
            f"{source} {','.join(selections)}",
            found,
            {
                "prefix": source,
                "selections": list(selections),
                "window_seconds": rule.seconds("window"),
            },
            in_window=_count_within(times[(source, selections)], found, window),
        )
        for (source, selections), found in groups.items()
    ]


def bucket_counts(rule: Rule, ballots: Iterable[Seen]) -> Counter[tuple[str, int]]:
    """Votes per (candidate, window number) by received_at: a burst rule's history."""
    width = rule.seconds("window")
    counts: Counter[tuple[str, int]] = Counter()
    for seen in ballots:
        for candidate in seen.selections:
            counts[(candidate, bucket_of(seen.received_at, width))] += 1
    return counts


def bucket_of(moment: datetime, width: float) -> int:
    return math.floor(moment.timestamp() / width)


def candidate_bursts(
    rule: Rule, history: Mapping[tuple[str, int], int], batch: Sequence[Seen]
) -> list[Detection]:
    """Ballots for a candidate whose votes in the current window exceed `factor` x its mean
    over the `baseline_windows` before (and at least `min_votes`)."""
    width, back = rule.seconds("window"), int(rule.param("baseline_windows"))
    factor, least = float(rule.param("factor")), int(rule.param("min_votes"))
    counts = Counter(history)
    groups: dict[tuple[str, int], list[Seen]] = defaultdict(list)
    for seen in batch:
        bucket = bucket_of(seen.received_at, width)
        for candidate in seen.selections:
            counts[(candidate, bucket)] += 1
            baseline = sum(counts[(candidate, bucket - k)] for k in range(1, back + 1)) / back
            if counts[(candidate, bucket)] >= max(least, factor * baseline):
                groups[(candidate, bucket)].append(seen)
    detections = []
    for (candidate, bucket), found in groups.items():
        baseline = sum(counts[(candidate, bucket - k)] for k in range(1, back + 1)) / back
        start = datetime.fromtimestamp(bucket * width, UTC)
        evidence = {
            "candidate": candidate,
            "votes_in_window": counts[(candidate, bucket)],
            "baseline_per_window": round(baseline, 2),
            "window_seconds": width,
        }
        detections.append(
            _detection(
                rule, candidate, found, evidence, span=(start, start + timedelta(seconds=width))
            )
        )
    return detections


def screen(defenses: Defenses, history: Sequence[Seen], batch: Sequence[Seen]) -> Screening:
    """Runs every rule; a ballot matched by several rules gets the strongest action."""
    found = [d for rule in defenses.rules for d in run_rule(rule, history, batch)]
    return Screening(found, verdicts(found))


def verdicts(detections: Iterable[Detection]) -> dict[UUID, tuple[Action, str]]:
    """Each matched ballot's strongest action and the (first) rule that asked for it."""
    actions: dict[UUID, list[tuple[Action, str]]] = defaultdict(list)
    for detection in detections:
        for ballot_id in detection.ballot_ids:
            actions[ballot_id].append((detection.rule.action, detection.rule.name))
    out: dict[UUID, tuple[Action, str]] = {}
    for ballot_id, found in actions.items():
        action = strongest([a for a, _ in found])
        out[ballot_id] = (action, next(name for a, name in found if a == action))
    return out


def run_rule(rule: Rule, history: Sequence[Seen], batch: Sequence[Seen]) -> list[Detection]:
    if rule.kind == "fresh_voter":
        return fresh_voters(rule, batch)
    if rule.kind == "identical_selections":
        return identical_selections(rule, history, batch)
    return candidate_bursts(rule, bucket_counts(rule, history), batch)


def _detection(
    rule: Rule,
    subject: str,
    found: list[Seen],
    evidence: dict[str, Any],
    *,
    in_window: int | None = None,
    span: tuple[datetime, datetime] | None = None,
) -> Detection:
    start, end = span or (min(s.cast_at for s in found), max(s.cast_at for s in found))
    facts = {**evidence, "ballots_matched": len(found)}
    if in_window is not None:
        facts["ballots_in_window"] = in_window
    return Detection(rule, subject, start, end, tuple(s.ballot_id for s in found), facts)


def _count_within(times: list[datetime], found: list[Seen], window: timedelta) -> int:
    """Ballots of the group inside the window ending at the last match."""
    last = max(s.cast_at for s in found)
    return sum(1 for t in times if last - window <= t <= last)
