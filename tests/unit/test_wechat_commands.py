"""Follower text as WeChat users type it: Chinese or English, spaces, commas, full-width."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.domain.errors import RuleError
from services.ingest.wechat.commands import (
    Help,
    ListCandidates,
    Results,
    Vote,
    parse_command,
    selections_for,
)
from services.runtime.campaigns import read_campaign_file

DEMO = Path(__file__).resolve().parents[2] / "campaigns" / "zibo-2021-b2.yaml"


@pytest.mark.parametrize(
    ("text", "choices"),
    [
        ("投票 1 3 5", ("1", "3", "5")),
        ("vote 1,3,5", ("1", "3", "5")),
        ("VOTE 1, 3 ,5", ("1", "3", "5")),
        ("投票1、3、5", ("1", "3", "5")),
        ("投票 １，３，５", ("1", "3", "5")),
        ("vote C03 c05", ("c03", "c05")),
        ("  投票\n2\t4  ", ("2", "4")),
    ],
)
def test_votes_are_read_in_every_common_spelling(text: str, choices: tuple[str, ...]) -> None:
    assert parse_command(text) == Vote(choices)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("名单", ListCandidates()),
        ("LIST", ListCandidates()),
        ("结果", Results()),
        ("results", Results()),
        ("投票", Help()),
        ("你好", Help()),
        ("", Help()),
        ("votes 1", Help()),
    ],
)
def test_other_words_ask_for_lists_results_or_help(text: str, command: object) -> None:
    assert parse_command(text) == command


def test_numbers_are_one_based_positions_and_ids_pass_through() -> None:
    campaign = read_campaign_file(DEMO, open_now=True)
    assert selections_for(campaign, Vote(("1", "c03", "25"))) == ("c01", "c03", "c25")


@pytest.mark.parametrize("number", ["0", "26"])
def test_numbers_outside_the_list_are_unknown_candidates(number: str) -> None:
    campaign = read_campaign_file(DEMO, open_now=True)
    with pytest.raises(RuleError) as caught:
        selections_for(campaign, Vote((number,)))
    assert caught.value.code == "unknown_candidate"
