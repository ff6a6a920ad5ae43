"""The kiosk's durable queue: SQLite in WAL mode with synchronous=FULL, so a ballot whose
cast was answered survives a crash or power loss.

A ballot is in at most one batch; a batch's body is stored before its first upload and
never changes, so after a restart the same batch (same batch_id, same bytes) is sent again
and the server answers it from its records instead of counting anything twice.

Once the server has answered a batch, its voter_refs are wiped: from the ballots and from the
stored body (only the body's hash stays, for the next batch's prev_hash). With
secure_delete the freed bytes are zeroed, and a WAL checkpoint empties the log, so the file
keeps no ref of an uploaded voter. Refs of a batch refused for good stay, for the operator.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq         INTEGER PRIMARY KEY,
    batch_id    TEXT NOT NULL UNIQUE,
    body        BLOB NOT NULL,                    -- emptied once answered
    body_hash   TEXT,                             -- hex SHA-256 of the body as uploaded
    state       TEXT NOT NULL DEFAULT 'pending',  -- pending | answered | refused
    answer      TEXT
);
CREATE TABLE IF NOT EXISTS ballots (
    ballot_id    TEXT PRIMARY KEY,
    campaign_id  TEXT NOT NULL,
    voter_ref    TEXT NOT NULL,                   -- sealed to the server; '' once answered
    selections   TEXT NOT NULL,
    cast_at      TEXT NOT NULL,
    batch_seq    INTEGER REFERENCES batches (seq),
    status       TEXT NOT NULL DEFAULT 'queued',  -- queued | accepted | rejected | refused
    reason       TEXT
);
CREATE INDEX IF NOT EXISTS ballots_unbatched ON ballots (batch_seq) WHERE batch_seq IS NULL;
"""


@dataclass(frozen=True)
class Batch:
    seq: int
    batch_id: str
    body: bytes


class BallotIdTakenError(ValueError):
    """A ballot_id the kiosk already holds for a different ballot."""


class KioskQueue:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # fsync every commit: power-loss safe
        self.db.execute("PRAGMA secure_delete=ON")  # wiped refs are zeroed, not left in pages
        self.db.executescript(_SCHEMA)
        self._add_body_hashes()

    def _add_body_hashes(self) -> None:
        """A queue written before body_hash existed gets the column, filled from the bodies."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(batches)")}
        if "body_hash" in columns:
            return
        with self._transaction():
            self.db.execute("ALTER TABLE batches ADD COLUMN body_hash TEXT")
            bodies = self.db.execute("SELECT seq, body FROM batches").fetchall()
            self.db.executemany(
                "UPDATE batches SET body_hash = ? WHERE seq = ?",
                [(hashlib.sha256(body).hexdigest(), seq) for seq, body in bodies],
            )

    def close(self) -> None:
        self.db.close()

    def cast(self, campaign_id: str, ref: str, selections: list[str], ballot_id: str) -> bool:
        """Queues a ballot; False if this ballot_id is queued already (a retried cast)."""
        row = (ballot_id, campaign_id, ref, orjson.dumps(selections).decode(), _now())
        inserted = self.db.execute(
            "INSERT OR IGNORE INTO ballots (ballot_id, campaign_id, voter_ref, selections,"
            " cast_at) VALUES (?, ?, ?, ?, ?)",
            row,
        ).rowcount
        if inserted:
            return True
        # A retried cast seals the voter afresh (every ref differs), so a retry is told
        # apart from a clash by campaign and selections only.
        held = self.db.execute(
            "SELECT campaign_id, selections FROM ballots WHERE ballot_id = ?", (ballot_id,)
        ).fetchone()
        if (held[0], held[1]) != (row[1], row[3]):
            raise BallotIdTakenError(f"ballot_id {ballot_id} holds another ballot")
        return False

    def next_batch(self, size: int) -> Batch | None:
        """The oldest unanswered batch, or a new one of up to `size` queued ballots."""
        with self._transaction():
            row = self.db.execute(
                "SELECT seq, batch_id, body FROM batches WHERE state = 'pending' ORDER BY seq"
            ).fetchone()
            if row is not None:
                return Batch(*row)
            return self._form_batch(size)

    def _form_batch(self, size: int) -> Batch | None:
        rows = self.db.execute(
            "SELECT rowid, ballot_id, campaign_id, voter_ref, selections, cast_at FROM ballots"
            " WHERE batch_seq IS NULL ORDER BY rowid LIMIT ?",
            (size,),
        ).fetchall()
        if not rows:
            return None
        last = self.db.execute("SELECT seq, body_hash FROM batches ORDER BY seq DESC").fetchone()
        seq, batch_id = (last[0] + 1 if last else 1), str(uuid.uuid4())
        body = orjson.dumps(
            {
                "batch_id": batch_id,
                "seq": seq,
                "prev_hash": last[1] if last else None,
                "ballots": [_entry(r) for r in rows],
            }
        )
        batch = Batch(seq, batch_id, body)
        self.db.execute(
            "INSERT INTO batches (seq, batch_id, body, body_hash) VALUES (?, ?, ?, ?)",
            (batch.seq, batch.batch_id, batch.body, hashlib.sha256(batch.body).hexdigest()),
        )
        self.db.executemany(
            "UPDATE ballots SET batch_seq = ? WHERE rowid = ?", [(seq, r[0]) for r in rows]
        )
        return batch

    def settle(self, batch: Batch, answer: dict[str, Any]) -> None:
        """Records the server's answer (each ballot accepted or rejected with its reason) and
        wipes the batch's voter_refs: the server has them, the kiosk needs them no more."""
        with self._transaction():
            self.db.execute(
                "UPDATE batches SET state = 'answered', answer = ?, body = X'' WHERE seq = ?",
                (orjson.dumps(answer).decode(), batch.seq),
            )
            self.db.executemany(
                "UPDATE ballots SET status = ?, reason = ? WHERE ballot_id = ? AND batch_seq = ?",
                [(r["status"], r["reason"], r["ballot_id"], batch.seq) for r in answer["results"]],
            )
            self.db.execute("UPDATE ballots SET voter_ref = '' WHERE batch_seq = ?", (batch.seq,))
        # the log still holds the pages as they were before: copy back and empty it
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def refuse(self, batch: Batch, code: str) -> None:
        """The server refused the whole batch for good (e.g. 409): kept for the operator."""
        with self._transaction():
            self.db.execute(
                "UPDATE batches SET state = 'refused', answer = ? WHERE seq = ?", (code, batch.seq)
            )
            self.db.execute(
                "UPDATE ballots SET status = 'refused', reason = ? WHERE batch_seq = ?",
                (code, batch.seq),
            )

    def summary(self) -> dict[str, Any]:
        """The kiosk's own record: ballots by status, reasons, and votes of accepted ballots."""
        rows = self.db.execute("SELECT campaign_id, selections, status, reason FROM ballots")
        statuses: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        votes: dict[str, Counter[str]] = {}
        for campaign_id, selections, status, reason in rows:
            statuses[status] += 1
            if reason:
                reasons[reason] += 1
            if status == "accepted":
                votes.setdefault(campaign_id, Counter()).update(orjson.loads(selections))
        return {
            "ballots": dict(statuses),
            "reasons": dict(reasons),
            "votes": {c: dict(v) for c, v in votes.items()},
        }

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if kind else "COMMIT")


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    _, ballot_id, campaign_id, ref, selections, cast_at = row
    return {
        "ballot_id": ballot_id,
        "campaign_id": campaign_id,
        "voter_ref": ref,
        "selections": orjson.loads(selections),
        "cast_at": cast_at,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
