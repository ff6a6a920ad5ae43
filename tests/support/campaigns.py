"""Small campaigns for tests that talk to the store directly (no running system)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.domain.campaign import Campaign, parse_campaign


def make_campaign(
    cid: str,
    *,
    candidates: tuple[str, ...] = ("c1", "c2", "c3", "c4"),
    top_n: int = 2,
    max_selections: int = 2,
    now: datetime | None = None,
    **extra: Any,
) -> Campaign:
    """Open from an hour before `now` to an hour after; `extra` adds or overrides fields."""
    at = now or datetime.now(UTC)
    data: dict[str, Any] = {
        "id": cid,
        "title": "t",
        "organizer": "o",
        "question": "q",
        "timezone": "UTC",
        "opens_at": (at - timedelta(hours=1)).isoformat(),
        "closes_at": (at + timedelta(hours=1)).isoformat(),
        "top_n": top_n,
        "ballot": {"min_selections": 1, "max_selections": max_selections},
        "candidates": [{"id": c, "title": c.upper(), "unit": "u"} for c in candidates],
        **extra,
    }
    return parse_campaign(data)
