"""A kiosk batch as uploaded: parsed strictly; per-ballot content is judged later, per ballot."""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from services.domain.errors import MalformedError, TooLargeError

MAX_BALLOTS = 1000
# seq is stored as a Postgres bigint, and so is the seq expected after it: a larger one would
# fail in the database (a 500) instead of being refused here. No kiosk counts this far.
MAX_SEQ = 2**62
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class KioskBatch:
    batch_id: UUID
    seq: int
    prev_hash: str | None
    body_hash: str  # hex SHA-256 of the exact body bytes: the next batch's prev_hash
    ballots: tuple[dict[str, Any], ...]  # raw entries, each with a valid unique ballot_id


def parse_batch(body: bytes) -> KioskBatch:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(f"body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(doc, dict):
        raise MalformedError("body must be a JSON object", code="malformed_json")
    return KioskBatch(
        batch_id=_uuid(doc.get("batch_id"), "batch_id", "bad_batch_id"),
        seq=_seq(doc.get("seq")),
        prev_hash=_prev_hash(doc.get("prev_hash")),
        body_hash=hashlib.sha256(body).hexdigest(),
        ballots=_ballots(doc.get("ballots")),
    )


def _uuid(raw: Any, name: str, code: str) -> UUID:
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            return UUID(raw)
    raise MalformedError(f"{name} must be a UUID", code=code)


def _seq(raw: Any) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_SEQ:
        raise MalformedError(f"seq must be a whole number from 1 to {MAX_SEQ}", code="bad_seq")
    return raw


def _prev_hash(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not _HEX64.match(raw):
        raise MalformedError("prev_hash must be a lower-case hex SHA-256", code="bad_prev_hash")
    return raw


def _ballots(raw: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        raise MalformedError("ballots must be a list of objects", code="bad_ballots")
    if len(raw) > MAX_BALLOTS:
        raise TooLargeError(f"at most {MAX_BALLOTS} ballots per batch", code="batch_too_large")
    ids = [_uuid(b.get("ballot_id"), "ballot_id", "bad_ballot_id") for b in raw]
    if len(set(ids)) != len(ids):
        raise MalformedError("a ballot_id appears twice in the batch", code="duplicate_ballot_id")
    return tuple({**b, "ballot_id": i} for b, i in zip(raw, ids, strict=True))
