"""Parsing a kiosk batch body: structure errors refuse the batch, content is judged later."""

from __future__ import annotations

import hashlib
import uuid

import orjson
import pytest

from services.domain.errors import MalformedError, TooLargeError, VotestreamError
from services.ingest.kiosk.batch import MAX_BALLOTS, MAX_SEQ, parse_batch


def body(**changes: object) -> bytes:
    doc: dict[str, object] = {
        "batch_id": str(uuid.uuid4()),
        "seq": 1,
        "prev_hash": None,
        "ballots": [{"ballot_id": str(uuid.uuid4()), "campaign_id": "x"}],
    }
    doc.update(changes)
    return orjson.dumps(doc)


def test_a_batch_is_parsed_and_hashed_over_its_exact_bytes() -> None:
    raw = body(prev_hash="c" * 64)
    batch = parse_batch(raw)
    assert batch.seq == 1 and batch.prev_hash == "c" * 64
    assert batch.body_hash == hashlib.sha256(raw).hexdigest()
    assert isinstance(batch.ballots[0]["ballot_id"], uuid.UUID)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{nope", "malformed_json"),
        (b"[]", "malformed_json"),
        (body(batch_id="b-1"), "bad_batch_id"),
        (body(seq=0), "bad_seq"),
        (body(seq="1"), "bad_seq"),
        (body(prev_hash="ABC"), "bad_prev_hash"),
        (body(ballots={}), "bad_ballots"),
        (body(ballots=[{"ballot_id": 7}]), "bad_ballot_id"),
        (body(ballots=[{"ballot_id": "0" * 36}]), "bad_ballot_id"),
    ],
)
def test_malformed_batches_are_refused_with_a_precise_code(raw: bytes, code: str) -> None:
    with pytest.raises(MalformedError) as refused:
        parse_batch(raw)
    assert refused.value.code == code and refused.value.status == 400


POSTGRES_BIGINT_MAX = 2**63 - 1  # kiosk_devices.last_seq, kiosk_chain_events.expected_seq


@pytest.mark.parametrize("seq", [MAX_SEQ + 1, POSTGRES_BIGINT_MAX, 2**63, 2**64 - 1])
def test_a_seq_beyond_what_the_ledger_stores_is_refused_not_a_server_error(seq: int) -> None:
    with pytest.raises(MalformedError) as refused:
        parse_batch(body(seq=seq))
    assert refused.value.code == "bad_seq"


def test_the_largest_seq_and_the_one_expected_after_it_fit_the_ledger() -> None:
    assert parse_batch(body(seq=MAX_SEQ)).seq == MAX_SEQ
    assert MAX_SEQ + 1 <= POSTGRES_BIGINT_MAX


def test_a_ballot_id_twice_in_one_batch_is_refused() -> None:
    same = str(uuid.uuid4())
    with pytest.raises(VotestreamError, match="twice"):
        parse_batch(body(ballots=[{"ballot_id": same}, {"ballot_id": same}]))


def test_an_oversized_batch_is_refused_as_too_large() -> None:
    entries = [{"ballot_id": str(uuid.uuid4())} for _ in range(MAX_BALLOTS + 1)]
    with pytest.raises(TooLargeError):
        parse_batch(body(ballots=entries))
