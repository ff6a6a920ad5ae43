"""The per-device hash chain: gaps and forks are found, stale seqs refused."""

from __future__ import annotations

import pytest

from services.ingest.kiosk.chain import ChainState, StaleSeqError, check_chain

H1, H2 = "a" * 64, "b" * 64
FRESH = ChainState(None, None)
AFTER_ONE = ChainState(1, H1)


def test_a_first_batch_and_a_well_linked_second_batch_break_nothing() -> None:
    assert check_chain(FRESH, 1, None) == []
    assert check_chain(AFTER_ONE, 2, H1) == []


def test_a_batch_without_prev_hash_after_the_first_is_a_fork() -> None:
    (found,) = check_chain(AFTER_ONE, 2, None)
    assert (found.kind, found.seq, found.expected_seq) == ("fork", 2, 2)
    assert check_chain(FRESH, 1, None) == []  # the first batch has nothing to follow


def test_a_skipped_seq_is_a_gap() -> None:
    (found,) = check_chain(AFTER_ONE, 5, H2)
    assert (found.kind, found.seq, found.expected_seq) == ("gap", 5, 2)
    (first,) = check_chain(FRESH, 3, None)
    assert (first.kind, first.expected_seq) == ("gap", 1)


def test_a_prev_hash_that_is_not_the_last_batch_is_a_fork() -> None:
    (found,) = check_chain(AFTER_ONE, 2, H2)
    assert found.kind == "fork"
    (first,) = check_chain(FRESH, 1, H2)
    assert first.kind == "fork"


@pytest.mark.parametrize("seq", [1, 2])
def test_a_used_seq_is_refused_as_a_fork(seq: int) -> None:
    with pytest.raises(StaleSeqError) as refused:
        check_chain(ChainState(3, H1), seq, None)
    assert refused.value.status == 409 and refused.value.code == "stale_seq"
    assert refused.value.chain_break.kind == "fork"
    with pytest.raises(StaleSeqError):
        check_chain(ChainState(3, H1), 3, H1)
