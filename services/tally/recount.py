"""Recounting a campaign from the ballot records alone, and comparing with what was published.

The recount reads only the `ballots` table (every ballot's stored fate). It is compared with
the tally's own running sums (`tallies` per candidate, channel and window; `intake_counts`
per outcome) and with the latest snapshot (per candidate and channel, totals and outcomes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

Key = tuple[str, ...]


@dataclass(frozen=True)
class Difference:
    source: str  # what disagrees with the recount: "tallies", "intake", "snapshot #7"
    what: str
    recount: int
    published: int


@dataclass(frozen=True)
class Recount:
    windows: Mapping[Key, int]  # (candidate, channel, window) -> votes, from ballots
    outcomes: Mapping[Key, int]  # (status, reason) -> ballots, from ballots
    tallied: Mapping[Key, int]  # the same keys as windows, from tallies
    intake: Mapping[Key, int]  # the same keys as outcomes, from intake_counts
    snapshot: dict[str, Any] | None

    @property
    def votes(self) -> int:
        return sum(self.windows.values())


_WINDOWS = """
SELECT candidate_id, channel, to_char(date_trunc('minute', received_at), 'YYYY-MM-DD HH24:MI'),
       count(*)
FROM ballots CROSS JOIN LATERAL unnest(selections) AS candidate_id
WHERE campaign_id = $1 AND status = 'counted' GROUP BY 1, 2, 3"""
_TALLIED = """
SELECT candidate_id, channel, to_char(window_start, 'YYYY-MM-DD HH24:MI'), sum(votes)
FROM tallies WHERE campaign_id = $1 GROUP BY 1, 2, 3"""
_OUTCOMES = """
SELECT status, coalesce(reason, ''), count(*) FROM ballots WHERE campaign_id = $1 GROUP BY 1, 2"""
_INTAKE = """
SELECT status, reason, sum(ballots) FROM intake_counts WHERE campaign_id = $1 GROUP BY 1, 2"""
_LATEST = "SELECT body FROM snapshots WHERE campaign_id = $1 ORDER BY seq DESC LIMIT 1"


async def recount(pool: asyncpg.Pool, campaign_id: str) -> Recount:
    """Reads everything in one consistent view of the database."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        sums = [await _sums(conn, sql, campaign_id) for sql in (_WINDOWS, _OUTCOMES)]
        kept = [await _sums(conn, sql, campaign_id) for sql in (_TALLIED, _INTAKE)]
        latest = await conn.fetchval(_LATEST, campaign_id)
    snapshot = orjson.loads(latest) if latest is not None else None
    return Recount(sums[0], sums[1], kept[0], kept[1], snapshot)


async def _sums(conn: asyncpg.Connection, sql: str, campaign_id: str) -> dict[Key, int]:
    return {tuple(r[:-1]): int(r[-1]) for r in await conn.fetch(sql, campaign_id)}


def differences(found: Recount) -> list[Difference]:
    out = _compare("tallies", "window {2} {0}/{1}", found.windows, found.tallied)
    out += _compare("intake", "ballots {0} {1}", found.outcomes, found.intake)
    if found.snapshot is not None:
        out += _compare(f"snapshot #{found.snapshot['seq']}", "{0}", *_vs_snapshot(found))
    elif found.windows or found.outcomes:
        out.append(Difference("snapshot", "none published", sum(found.outcomes.values()), 0))
    return out


def _vs_snapshot(found: Recount) -> tuple[dict[Key, int], dict[Key, int]]:
    """Both sides keyed alike: per candidate and channel, per candidate, per outcome."""
    mine: Counter[Key] = Counter()
    for (cid, channel, _), votes in found.windows.items():
        mine[(f"{cid}/{channel}",)] += votes
        mine[(f"{cid} votes",)] += votes
    for (status, reason), ballots in found.outcomes.items():
        mine[(f"ballots_{status} {reason}".rstrip(),)] += ballots
    theirs: dict[Key, int] = {}
    assert found.snapshot is not None
    for candidate in found.snapshot["candidates"]:
        theirs[(f"{candidate['id']} votes",)] = candidate["votes"]
        for channel, votes in candidate["by_channel"].items():
            theirs[(f"{candidate['id']}/{channel}",)] = votes
    theirs[("ballots_counted",)] = found.snapshot["ballots_counted"]
    for reason, ballots in found.snapshot["ballots_rejected"].items():
        theirs[(f"ballots_rejected {reason}",)] = ballots
    for rule, ballots in found.snapshot.get("ballots_held", {}).items():
        theirs[(f"ballots_held {rule}",)] = ballots  # awaiting the organiser (defences)
    return dict(mine), theirs


def _compare(
    source: str, label: str, mine: Mapping[Key, int], theirs: Mapping[Key, int]
) -> list[Difference]:
    out = []
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key, 0) != theirs.get(key, 0):
            out.append(Difference(source, label.format(*key), mine.get(key, 0), theirs.get(key, 0)))
    return out


def table(found: list[Difference]) -> list[str]:
    """The differences as aligned lines, a header first."""
    lines = [f"{'source':<14}{'what':<44}{'recount':>9}{'published':>11}{'diff':>8}"]
    for d in found:
        delta = d.published - d.recount
        lines.append(f"{d.source:<14}{d.what:<44}{d.recount:>9}{d.published:>11}{delta:>+8}")
    return lines
