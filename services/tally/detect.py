"""The detection step of a batch: a campaign's defence rules over a sliding window in Postgres.

Called inside the batch's transaction, after the fates are decided and before they are
written (`screen_batch`: a matched ballot becomes 'held' or 'rejected' per the rule's action),
and after the write (`record`: detection rows and held ballots, for the ballots that were
new only — so a replayed batch records nothing twice). The window is read from the `ballots`
table rather than kept in Faust tables: it spans every partition (a click farm's voters hash
to all of them), survives restarts exactly, and never rests on changelog recovery, which
loses records on the embedded broker. announce.py puts the stored detections on the topic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from services.domain.ballot import Ballot, Fate
from services.domain.campaign import Campaign
from services.domain.defenses import Action, Rule
from services.domain.detectors import (
    Detection,
    Seen,
    bucket_of,
    candidate_bursts,
    fresh_voters,
    identical_selections,
    source_of,
    verdicts,
)
from services.tally.counting import Decisions

SOURCE_SQL = "coalesce(meta->>'ip_prefix', 'kiosk:' || (meta->>'device_id'))"  # = the index


@dataclass(frozen=True)
class Found:
    """A detection of this batch, and which of its ballots the rule's action applied to."""

    campaign_id: str
    detection: Detection
    held: tuple[UUID, ...]


async def screen_batch(
    conn: asyncpg.Connection,
    decisions: Decisions,
    campaigns: Callable[[str], Campaign | None],
) -> list[Found]:
    """Runs each defended campaign's rules over its counted ballots; rewrites matched fates."""
    found: list[Found] = []
    for campaign_id in sorted({f.ballot.campaign_id for f, _ in decisions.fates}):
        campaign = campaigns(campaign_id)
        if campaign is None or campaign.defenses is None:
            continue  # no `defenses:` section: the ballot path is exactly as before
        batch = [
            seen_of(f.ballot)
            for f, _ in decisions.fates
            if f.ballot.campaign_id == campaign_id and f.status == "counted"
        ]
        if not batch:
            continue
        detections = [
            d
            for rule in campaign.defenses.rules
            for d in await _run(conn, campaign_id, rule, batch)
        ]
        judged = verdicts(detections)
        _apply(decisions, judged)
        for detection in detections:
            held = tuple(
                b for b in detection.ballot_ids if judged[b] == ("hold", detection.rule.name)
            )
            found.append(Found(campaign_id, detection, held))
    return found


async def record(conn: asyncpg.Connection, found: Sequence[Found], new: set[UUID]) -> list[Found]:
    """Stores the detections (counting only new ballots) and the held ballots."""
    stored: list[Found] = []
    for item in found:
        d = item.detection
        matched = [b for b in d.ballot_ids if b in new]
        if not matched:
            continue  # the whole match was already stored: a replay
        evidence = {**d.evidence, "ballots_matched": len(matched)}
        detection_id = await conn.fetchval(
            "INSERT INTO detections (campaign_id, rule, kind, action, subject, window_start,"
            " window_end, ballots, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)"
            " RETURNING id",
            item.campaign_id,
            d.rule.name,
            d.rule.kind,
            d.rule.action,
            d.subject,
            d.window_start,
            d.window_end,
            len(matched),
            orjson.dumps(evidence).decode(),
        )
        held = [b for b in item.held if b in new]
        if held:
            await conn.execute(
                "INSERT INTO held_ballots (ballot_id, campaign_id, rule, detection_id)"
                " SELECT unnest($1::uuid[]), $2, $3, $4 ON CONFLICT DO NOTHING",
                held,
                item.campaign_id,
                d.rule.name,
                detection_id,
            )
        stored.append(replace(item, detection=replace(d, ballot_ids=tuple(matched))))
    return stored


def seen_of(ballot: Ballot) -> Seen:
    iat = ballot.meta.get("token_iat")
    try:
        token_iat = datetime.fromisoformat(iat) if isinstance(iat, str) else None
    except ValueError:
        token_iat = None  # a malformed claim proves nothing either way
    return Seen(
        ballot.ballot_id,
        ballot.selections,
        source_of(ballot.meta),
        ballot.cast_at,
        ballot.received_at,
        token_iat,
    )


async def _run(
    conn: asyncpg.Connection, campaign_id: str, rule: Rule, batch: list[Seen]
) -> list[Detection]:
    if rule.kind == "fresh_voter":
        return fresh_voters(rule, batch)
    if rule.kind == "identical_selections":
        return identical_selections(rule, await _by_source(conn, campaign_id, rule, batch), batch)
    return candidate_bursts(rule, await _by_window(conn, campaign_id, rule, batch), batch)


async def _by_source(
    conn: asyncpg.Connection, campaign_id: str, rule: Rule, batch: list[Seen]
) -> list[Seen]:
    """Stored ballots from the batch's prefixes and kiosks, cast within the window."""
    sources = sorted({s.source for s in batch if s.source})
    if not sources:
        return []
    since = min(s.cast_at for s in batch) - rule.param("window")
    rows = await conn.fetch(
        f"SELECT ballot_id, selections, {SOURCE_SQL} AS source, cast_at, received_at"  # noqa: S608
        f" FROM ballots WHERE campaign_id = $1 AND {SOURCE_SQL} = ANY($2::text[])"
        " AND cast_at >= $3 AND cast_at <= $4 AND status <> 'rejected' ORDER BY cast_at",
        campaign_id,
        sources,
        since,
        max(s.cast_at for s in batch),
    )
    return [
        Seen(r["ballot_id"], tuple(r["selections"]), r["source"], r["cast_at"], r["received_at"])
        for r in rows
    ]


async def _by_window(
    conn: asyncpg.Connection, campaign_id: str, rule: Rule, batch: list[Seen]
) -> Counter[tuple[str, int]]:
    """Votes per candidate and window over the baseline: counted and held ballots."""
    width = rule.seconds("window")
    first = bucket_of(min(s.received_at for s in batch), width) - int(
        rule.param("baseline_windows")
    )
    rows = await conn.fetch(
        "SELECT candidate_id, floor(extract(epoch FROM received_at) / $3)::bigint AS bucket,"
        " count(*) AS votes FROM ballots CROSS JOIN LATERAL unnest(selections) AS candidate_id"
        " WHERE campaign_id = $1 AND received_at >= to_timestamp($2 * $3)"
        " AND status IN ('counted', 'held') GROUP BY 1, 2",
        campaign_id,
        first,
        width,
    )
    return Counter({(r["candidate_id"], r["bucket"]): r["votes"] for r in rows})


def _apply(decisions: Decisions, judged: dict[UUID, tuple[Action, str]]) -> None:
    for i, (fate, record) in enumerate(decisions.fates):
        action, rule = judged.get(fate.ballot.ballot_id, ("count", ""))
        if action == "hold":
            decisions.fates[i] = (Fate(fate.ballot, "held", rule, fate.period), record)
        elif action == "reject":
            decisions.fates[i] = (
                Fate(fate.ballot, "rejected", f"suspected_{rule}", fate.period),
                record,
            )
