"""Result snapshots: contents, RFC 8785 canonical bytes, hash chain and Ed25519 signature.

Anyone can verify one: strip `hash` and `signature`, canonicalise (JCS), SHA-256 must equal
`hash`, and the Ed25519 public key must verify `signature` over the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.domain.campaign import Campaign
from services.domain.campaign_changes import campaign_hash
from services.domain.ranking import rank

CHANNELS = ("web", "wechat", "kiosk")


@dataclass(frozen=True)
class Counts:
    """What the tally has stored for a campaign, summed over windows and partitions."""

    votes: Mapping[tuple[str, str], int]  # (candidate, channel) -> votes
    ballots_counted: int
    ballots_rejected: Mapping[str, int]  # reason -> ballots
    ballots_held: Mapping[str, int] | None = None  # rule -> ballots awaiting a decision


def contents(campaign: Campaign, counts: Counts) -> dict[str, Any]:
    """The part of a snapshot that changes only when the counts do."""
    totals = {
        c.id: sum(counts.votes.get((c.id, ch), 0) for ch in CHANNELS) for c in campaign.candidates
    }
    standing = rank(totals, campaign.top_n)
    candidates = [
        {
            "id": c.id,
            "title": c.title,
            "unit": c.unit,
            "votes": totals[c.id],
            "rank": standing.ranks[c.id],
            "by_channel": {ch: counts.votes.get((c.id, ch), 0) for ch in CHANNELS},
        }
        for c in sorted(campaign.candidates, key=lambda c: (standing.ranks[c.id], c.id))
    ]
    body: dict[str, Any] = {
        "campaign_id": campaign.id,
        # the definition counted under, inside the signed bytes: a later edit shows
        "campaign_hash": campaign_hash(campaign),
        "ballots_counted": counts.ballots_counted,
        "ballots_rejected": dict(sorted(counts.ballots_rejected.items())),
        "candidates": candidates,
        "top": standing.top,
        "tie_at_cutoff": standing.tie_at_cutoff,
    }
    if counts.ballots_held is not None:
        body["ballots_held"] = dict(sorted(counts.ballots_held.items()))
    return body


def seal(
    body: Mapping[str, Any],
    *,
    seq: int,
    as_of: datetime,
    final: bool,
    prev_hash: str | None,
    signing_key: Ed25519PrivateKey | None,
) -> dict[str, Any]:
    """Adds the chain fields, the hash and (when a key is given) the signature."""
    snapshot = {**body, "seq": seq, "as_of": as_of.isoformat(), "final": final}
    snapshot["prev_hash"] = prev_hash
    data = canonical_bytes(snapshot)
    snapshot["hash"] = hashlib.sha256(data).hexdigest()
    snapshot["signature"] = (
        base64.b64encode(signing_key.sign(data)).decode() if signing_key else None
    )
    return snapshot


def canonical_bytes(snapshot: Mapping[str, Any]) -> bytes:
    unsigned = {k: v for k, v in snapshot.items() if k not in ("hash", "signature")}
    return rfc8785.dumps(unsigned)


def verify(
    snapshot: Mapping[str, Any],
    public_key: Ed25519PublicKey | None,
    campaign: Campaign | None = None,
) -> list[str]:
    """Problems found with a snapshot (empty when it is intact and, if signed, authentic,
    and, when a campaign definition is given, counted under that definition)."""
    problems: list[str] = []
    if campaign is not None and snapshot.get("campaign_hash") != campaign_hash(campaign):
        problems.append(
            f"campaign_hash {snapshot.get('campaign_hash')} is not the hash of the campaign"
            f" definition given ({campaign_hash(campaign)})"
        )
    data = canonical_bytes(snapshot)
    if hashlib.sha256(data).hexdigest() != snapshot.get("hash"):
        problems.append("hash does not match the canonical bytes")
    signature = snapshot.get("signature")
    if signature and public_key is not None:
        try:
            public_key.verify(base64.b64decode(signature), data)
        except (InvalidSignature, ValueError):
            problems.append("signature does not verify with the public key")
    elif snapshot.get("final") and not signature:
        problems.append("a final snapshot must be signed")
    return problems
