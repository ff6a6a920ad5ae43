"""Standard competition ranking ("1224") and the top-N cut."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Standing:
    ranks: dict[str, int]
    top: list[str]
    tie_at_cutoff: bool


def rank(votes: Mapping[str, int], top_n: int) -> Standing:
    """Ranks by votes (ties share a rank); `top` holds every candidate ranked within top_n.

    When a tie straddles the cut, all tied candidates are in `top` and `tie_at_cutoff` is set,
    so the organiser sees that the cut needs a decision.
    """
    order = sorted(votes, key=lambda cid: (-votes[cid], cid))
    ranks: dict[str, int] = {}
    for position, cid in enumerate(order, start=1):
        previous = order[position - 2] if position > 1 else None
        same = previous is not None and votes[previous] == votes[cid]
        ranks[cid] = ranks[previous] if same and previous else position
    top = [cid for cid in order if ranks[cid] <= top_n]
    return Standing(ranks, top, tie_at_cutoff=len(top) > top_n)
