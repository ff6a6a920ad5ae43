"""Codec of the `ballots` topic: Ballot and Cutoff events as compact JSON (schema ballot.v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args
from uuid import UUID

import orjson

from services.domain.ballot import Ballot, Channel, Cutoff

CHANNELS: frozenset[str] = frozenset(get_args(Channel))


class EventDecodeError(ValueError):
    """An event that is not a valid ballot.v1 document; the tally records and skips it."""


def encode_ballot(ballot: Ballot) -> bytes:
    # orjson writes the UUID, the datetimes (RFC 3339, as isoformat() does) and the tuple
    # itself, in C; the receipt is the digest of exactly these bytes.
    return orjson.dumps(
        {
            "v": 1,
            "kind": "ballot",
            "ballot_id": ballot.ballot_id,
            "campaign_id": ballot.campaign_id,
            "channel": ballot.channel,
            "voter_key": ballot.voter_key,
            "selections": ballot.selections,
            "cast_at": ballot.cast_at,
            "received_at": ballot.received_at,
            "meta": ballot.meta,
        }
    )


def encode_cutoff(cutoff: Cutoff) -> bytes:
    return orjson.dumps(
        {
            "v": 1,
            "kind": "cutoff",
            "campaign_id": cutoff.campaign_id,
            "written_at": cutoff.written_at.isoformat(),
        }
    )


def decode_event(data: bytes) -> Ballot | Cutoff:
    """One pass: the JSON document straight into the event (the tally's hot path)."""
    try:
        doc: dict[str, Any] = orjson.loads(data)
        if doc.get("v") != 1:
            raise EventDecodeError(f"unsupported event version {doc.get('v')!r}")
        kind = doc["kind"]
        if kind == "ballot":
            channel = doc["channel"]
            if channel not in CHANNELS:
                raise EventDecodeError(f"unknown channel {channel!r}")
            return Ballot(
                UUID(doc["ballot_id"]),
                doc["campaign_id"],
                channel,
                doc["voter_key"],
                tuple(doc["selections"]),
                datetime.fromisoformat(doc["cast_at"]),
                datetime.fromisoformat(doc["received_at"]),
                doc.get("meta") or {},
            )
        if kind == "cutoff":
            return Cutoff(doc["campaign_id"], datetime.fromisoformat(doc["written_at"]))
        raise EventDecodeError(f"unknown event kind {kind!r}")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        # AttributeError: valid JSON that is not an object (a list, a number) has no .get
        raise EventDecodeError(str(exc)) from exc
