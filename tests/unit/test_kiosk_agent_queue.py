"""The kiosk's SQLite queue: idempotent casts, a hash-chained batch sequence that survives
reopening, the kiosk's own record, and no raw phone or ID number anywhere in it."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from pathlib import Path

import orjson
import pytest

from services.domain.errors import MalformedError
from services.domain.voter_refs import open_ref, server_sealing_key
from services.kiosk_agent.identity import Sealer
from services.kiosk_agent.queue import BallotIdTakenError, KioskQueue

PHONE = "+8613800138000"
SERVER = server_sealing_key(b"pepper")
SEALER = Sealer(SERVER.public_key())


def voter_ref(typed: str, campaign_id: str = "camp") -> str:
    return SEALER.voter_ref(campaign_id, typed)


def queue_with(path: Path, n: int) -> tuple[KioskQueue, list[str]]:
    queue = KioskQueue(path)
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for i, ballot_id in enumerate(ids):
        queue.cast("camp", voter_ref(f"1380013{i:04d}"), ["c01", "c02"], ballot_id)
    return queue, ids


def test_a_voter_ref_seals_the_canonical_identity_which_only_the_server_opens() -> None:
    assert open_ref(SERVER, "camp", voter_ref("138 0013-8000")) == PHONE
    assert open_ref(SERVER, "camp", voter_ref("+86１3800138000")) == PHONE
    assert open_ref(SERVER, "camp", voter_ref("11010519491231002x")) == (
        "kiosk-id:11010519491231002X"
    )
    assert voter_ref(PHONE) != voter_ref(PHONE)  # fresh each time: refs do not link visits
    assert voter_ref(PHONE) != hashlib.sha256(PHONE.encode()).hexdigest()
    for typed, code in [("hello!", "bad_phone"), ("110105194912310021", "bad_id_check_digit")]:
        with pytest.raises(MalformedError) as refused:
            voter_ref(typed)
        assert refused.value.code == code


def test_casting_the_same_ballot_id_again_queues_it_once(tmp_path: Path) -> None:
    queue = KioskQueue(tmp_path / "q.db")
    ballot_id = str(uuid.uuid4())
    assert queue.cast("camp", voter_ref(PHONE), ["c01"], ballot_id) is True
    assert queue.cast("camp", voter_ref(PHONE), ["c01"], ballot_id) is False  # sealed afresh
    with pytest.raises(BallotIdTakenError):
        queue.cast("camp", voter_ref(PHONE), ["c02"], ballot_id)
    assert queue.summary()["ballots"] == {"queued": 1}


def test_batches_are_chained_and_a_pending_batch_is_sent_again_unchanged(tmp_path: Path) -> None:
    queue, ids = queue_with(tmp_path / "q.db", 5)
    first = queue.next_batch(3)
    assert first is not None and first.seq == 1
    assert queue.next_batch(3) == first  # unanswered: the same bytes again
    queue.close()
    reopened = KioskQueue(tmp_path / "q.db")  # as after a crash
    assert reopened.next_batch(3) == first
    doc = orjson.loads(first.body)
    assert doc["prev_hash"] is None and [b["ballot_id"] for b in doc["ballots"]] == ids[:3]
    answer = {
        "batch_id": first.batch_id,
        "results": [
            {"ballot_id": ids[0], "status": "accepted", "reason": None},
            {"ballot_id": ids[1], "status": "accepted", "reason": None},
            {"ballot_id": ids[2], "status": "rejected", "reason": "campaign_closed"},
        ],
    }
    reopened.settle(first, answer)
    second = reopened.next_batch(3)
    assert second is not None and second.seq == 2
    second_doc = orjson.loads(second.body)
    assert second_doc["prev_hash"] == hashlib.sha256(first.body).hexdigest()
    assert [b["ballot_id"] for b in second_doc["ballots"]] == ids[3:]
    summary = reopened.summary()
    assert summary["ballots"] == {"accepted": 2, "rejected": 1, "queued": 2}
    assert summary["reasons"] == {"campaign_closed": 1}
    assert summary["votes"] == {"camp": {"c01": 2, "c02": 2}}


def test_a_refused_batch_marks_its_ballots_and_the_queue_moves_on(tmp_path: Path) -> None:
    queue, _ = queue_with(tmp_path / "q.db", 2)
    first = queue.next_batch(1)
    assert first is not None
    queue.refuse(first, "stale_seq")
    second = queue.next_batch(1)
    assert second is not None and second.seq == 2
    assert queue.summary()["reasons"] == {"stale_seq": 1}


def test_the_queue_is_in_wal_mode_and_holds_no_raw_number(tmp_path: Path) -> None:
    queue = KioskQueue(tmp_path / "q.db")
    ref = voter_ref(PHONE)
    queue.cast("camp", ref, ["c01"], str(uuid.uuid4()))
    queue.close()
    db = sqlite3.connect(tmp_path / "q.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"13800138000" not in stored
    assert ref.encode() in stored  # sealed: only the server can open it


def test_a_queue_written_before_body_hashes_chains_on_from_its_last_batch(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "q.db")
    old.executescript(
        "CREATE TABLE batches (seq INTEGER PRIMARY KEY, batch_id TEXT NOT NULL UNIQUE,"
        " body BLOB NOT NULL, state TEXT NOT NULL DEFAULT 'pending', answer TEXT);"
    )
    old.execute("INSERT INTO batches VALUES (1, 'b1', X'7b7d', 'answered', '{}')")
    old.commit()
    old.close()
    queue = KioskQueue(tmp_path / "q.db")
    queue.cast("camp", voter_ref(PHONE), ["c01"], str(uuid.uuid4()))
    batch = queue.next_batch(10)
    assert batch is not None and batch.seq == 2
    assert orjson.loads(batch.body)["prev_hash"] == hashlib.sha256(b"{}").hexdigest()
