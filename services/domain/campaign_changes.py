"""Which changes a campaign definition may take, and the hashes that record them.

One place decides, for the admin API, `votestream campaign load` and any organiser console:
- before the tally has counted a ballot of the campaign, anything may change;
- once it has, the counting rules are frozen (candidate ids and their order, which WeChat
  voters vote by; ballot bounds; the limit; the time zone its days are counted in; channels;
  opening time; top N; kiosk grace): a change is refused with 409 `campaign_locked`;
- wording (title, question, organizer, candidate titles and units) and the stuffing defences
  may change, and the closing time may move while the campaign is open (extend, or close
  early, never into the past, never reopening a closed campaign);
- once the final is sealed, nothing changes.
Every accepted change is recorded in an append-only history whose rows are hash-chained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import rfc8785

from services.domain.campaign import Campaign
from services.domain.errors import ConflictError

LOCKED = "campaign_locked"


class CampaignLockedError(ConflictError):
    """The change touches what the campaign's counted ballots (or its final) rest on."""

    code = LOCKED


def hashed_definition(campaign: Campaign) -> dict[str, Any]:
    """The part of a definition that `campaign_hash` covers: everything anyone can read at
    GET /v1/campaigns/{id} (the defences' thresholds stay private, so they are left out)."""
    data = campaign.to_dict()
    data.pop("defenses", None)
    return data


def campaign_hash(campaign: Campaign) -> str:
    """Hex SHA-256 of the RFC 8785 bytes of the definition (see docs/VERIFYING.md)."""
    return hashlib.sha256(rfc8785.dumps(hashed_definition(campaign))).hexdigest()


def _rules(c: Campaign) -> dict[str, Any]:
    return {
        "candidate ids": [x.id for x in c.candidates],
        "ballot bounds": (c.min_selections, c.max_selections),
        "limit": (c.per_voter, c.period),
        "timezone": c.timezone,
        "channels": c.channels,
        "opens_at": c.opens_at,
        "top_n": c.top_n,
        "kiosk_grace": c.kiosk_grace,
    }


def _wording(c: Campaign) -> dict[str, Any]:
    return {
        "title": c.title,
        "organizer": c.organizer,
        "question": c.question,
        "candidates": [(x.title, x.unit) for x in c.candidates],
    }


def classify_change(
    old: Campaign | None, new: Campaign, *, counted: bool, sealed: bool, now: datetime
) -> tuple[str, ...]:
    """What kind of change `old` -> `new` is (empty when nothing changes); raises
    CampaignLockedError when it is not allowed."""
    if old is None:
        return ("created",)
    if sealed:
        raise CampaignLockedError(f"campaign {old.id!r} has a sealed final: nothing may change")
    changes: list[str] = []
    rules = _changed(_rules(old), _rules(new))
    if rules and counted:
        raise CampaignLockedError(
            f"campaign {old.id!r} has counted ballots: its counting rules are frozen"
            f" (changed: {', '.join(rules)})"
        )
    if rules:
        changes.append("rules")
    if _changed(_wording(old), _wording(new)):
        changes.append("wording")
    if old.closes_at != new.closes_at:
        changes.append(_closing(old, new, now))
    if old.defenses != new.defenses:
        changes.append("defenses")
    return tuple(changes)


def _closing(old: Campaign, new: Campaign, now: datetime) -> str:
    if now >= old.closes_at:
        raise CampaignLockedError(f"campaign {old.id!r} has closed: it cannot be reopened")
    if new.closes_at < now:
        raise CampaignLockedError("closes_at may not move into the past (close it now instead)")
    return "extended" if new.closes_at > old.closes_at else "closed_early"


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return [name for name, value in before.items() if after[name] != value]


def history_row_hash(
    *,
    campaign_id: str,
    seq: int,
    changes: tuple[str, ...],
    actor: str,
    changed_at: datetime,
    definition_hash: str,
    prev_hash: str | None,
) -> str:
    """The hash of one history row: it covers the previous row's hash, so the rows of a
    campaign form a chain that cannot be rewritten unnoticed."""
    row: dict[str, Any] = {
        "campaign_id": campaign_id,
        "seq": seq,
        "changes": list(changes),
        "actor": actor,
        "changed_at": changed_at.isoformat(),
        "definition_hash": definition_hash,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(rfc8785.dumps(row)).hexdigest()


def public_row_hash(
    *,
    campaign_id: str,
    seq: int,
    changes: list[str],
    changed_at: str,
    definition_hash: str,
    prev_hash: str | None,
) -> str:
    """The hash of one row of the public history: history_row_hash without the actor, so
    anyone can recompute it from what the public history shows. The organiser's own hash
    covers the actor and is never shown publicly: without a secret in it, it would confirm
    any guessed organiser name (docs/VERIFYING.md)."""
    row: dict[str, Any] = {
        "campaign_id": campaign_id,
        "seq": seq,
        "changes": changes,
        "changed_at": changed_at,
        "definition_hash": definition_hash,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(rfc8785.dumps(row)).hexdigest()
