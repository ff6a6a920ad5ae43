"""Standard competition ranking and the top-N cut, ties at the cut included."""

from __future__ import annotations

from services.domain.ranking import rank


def test_ties_share_a_rank_and_the_next_rank_skips() -> None:
    standing = rank({"a": 5, "b": 3, "c": 5, "d": 1}, top_n=3)
    assert standing.ranks == {"a": 1, "c": 1, "b": 3, "d": 4}
    assert standing.top == ["a", "c", "b"]
    assert not standing.tie_at_cutoff


def test_a_tie_straddling_the_cut_puts_every_tied_candidate_in_top_and_flags_it() -> None:
    standing = rank({"a": 9, "b": 4, "c": 4, "d": 4, "e": 1}, top_n=2)
    assert standing.top == ["a", "b", "c", "d"]
    assert standing.ranks["d"] == 2 and standing.ranks["e"] == 5
    assert standing.tie_at_cutoff


def test_a_tie_just_below_the_cut_is_not_a_tie_at_the_cut() -> None:
    standing = rank({"a": 9, "b": 8, "c": 4, "d": 4}, top_n=2)
    assert standing.top == ["a", "b"]
    assert not standing.tie_at_cutoff


def test_all_zero_votes_tie_everyone_for_first() -> None:
    standing = rank({"b": 0, "a": 0, "c": 0}, top_n=1)
    assert standing.top == ["a", "b", "c"] and set(standing.ranks.values()) == {1}
    assert standing.tie_at_cutoff
