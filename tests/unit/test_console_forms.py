"""The console's campaign form, its exports and its strings: pure parts, no server."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import pytest
from openpyxl import load_workbook

from services.domain.campaign import parse_campaign
from services.domain.errors import CampaignInvalidError
from services.ingest.console.exports import ranking_csv, ranking_xlsx
from services.ingest.console.forms import (
    FORM_ERROR,
    definition_from_form,
    errors_by_field,
    form_from_campaign,
)
from services.ingest.console.locale import LANGUAGES, pick_language, translator

FORM: dict[str, Any] = {
    "id": "park-2027",
    "title": "公园命名",
    "organizer": "市园林局",
    "question": "选出你最喜欢的名字",
    "timezone": "Asia/Shanghai",
    "opens_at": "2027-03-01T09:00",
    "closes_at": "2027-03-08T18:00",
    "top_n": "1",
    "min_selections": "1",
    "max_selections": "2",
    "per_voter": "1",
    "period": "day",
    "channels": ["web", "kiosk"],
    "candidates": "n1 | 翠湖 | 甲\nn2 | 青山 | 乙\n\nn3 | 白鹭 | 丙",
    "defenses": "rules:\n  - {kind: fresh_voter, action: hold}",
}


def test_a_filled_form_is_a_valid_campaign_in_its_own_time_zone() -> None:
    campaign = parse_campaign(definition_from_form(FORM))
    assert campaign.opens_at == datetime(2027, 3, 1, 1, 0, tzinfo=UTC)
    assert [c.id for c in campaign.candidates] == ["n1", "n2", "n3"]
    assert set(campaign.channels) == {"web", "kiosk"}
    assert (campaign.per_voter, campaign.period, campaign.max_selections) == (1, "day", 2)
    assert campaign.defenses is not None
    assert parse_campaign(definition_from_form(form_from_campaign(campaign))) == campaign


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_selections": "9"}, "max_selections"),
        ({"closes_at": "2027-02-01T09:00"}, "closes_at"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"candidates": "n1 | a | b\nn1 | c | d"}, "candidates"),
        ({"per_voter": "none"}, "per_voter"),
        ({"top_n": "²"}, "top_n"),  # a digit to str.isdigit, not to int()
        ({"id": "Bad Id"}, "id"),
        ({"defenses": "- not a mapping"}, "defenses"),
    ],
)
def test_each_error_is_shown_next_to_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(CampaignInvalidError) as caught:
        parse_campaign(definition_from_form({**FORM, **change}))
    by_field = errors_by_field(caught.value.errors)
    assert field in by_field, by_field
    assert FORM_ERROR not in by_field


SNAPSHOT: dict[str, Any] = {
    "campaign_id": "park-2027",
    "seq": 7,
    "as_of": "2027-03-08T10:00:02+00:00",
    "final": True,
    "ballots_counted": 5,
    "hash": "ab" * 32,
    "signature": "c2ln",
    "top": ["n2"],
    "candidates": [
        {"id": "n1", "title": "翠湖", "unit": "甲", "votes": 2, "rank": 2,
         "by_channel": {"web": 2}},
        {"id": "n2", "title": "青山", "unit": "乙", "votes": 3, "rank": 1,
         "by_channel": {"web": 1, "kiosk": 2}},
    ],
}  # fmt: skip


def test_csv_and_xlsx_hold_the_snapshots_own_numbers_in_rank_order() -> None:
    rows = list(csv.reader(io.StringIO(ranking_csv(SNAPSHOT, "KEY").decode("utf-8-sig"))))
    assert rows[0] == ["rank", "id", "title", "unit", "votes", "web", "wechat", "kiosk"]
    assert rows[1] == ["1", "n2", "青山", "乙", "3", "1", "0", "2"]
    assert rows[2] == ["2", "n1", "翠湖", "甲", "2", "2", "0", "0"]
    assert ["public_key", "KEY"] in rows and ["hash", "ab" * 32] in rows

    book = load_workbook(io.BytesIO(ranking_xlsx(SNAPSHOT, "KEY")))
    sheet = [list(r) for r in book["ranking"].iter_rows(values_only=True)]
    assert sheet[1] == [1, "n2", "青山", "乙", 3, 1, 0, 2]
    about = dict(book["snapshot"].iter_rows(values_only=True))
    assert (about["seq"], about["final"], about["public_key"]) == (7, True, "KEY")


def test_every_language_has_every_string() -> None:
    keys = [
        set(
            json.loads(
                files("services.ingest.console").joinpath(f"locales/{lang}.json").read_text()
            )
        )
        for lang in LANGUAGES
    ]
    assert keys[0] and all(k == keys[0] for k in keys)
    assert translator("en")("campaign.counted") == "Counted"
    assert translator("zh-CN")("no.such.key") == "no.such.key"


def test_the_language_is_chosen_by_query_then_cookie_then_browser() -> None:
    assert pick_language("en", "zh-CN", "zh") == "en"
    assert pick_language(None, "en", "zh-CN,zh;q=0.9") == "en"
    assert pick_language(None, None, "en-GB,en;q=0.8") == "en"
    assert pick_language(None, None, "") == "zh-CN"


def test_a_title_that_looks_like_a_formula_stays_text_in_both_exports() -> None:
    evil = '=HYPERLINK("http://x.example","点我")'
    snapshot = {**SNAPSHOT, "candidates": [{**SNAPSHOT["candidates"][0], "title": evil}]}
    rows = list(csv.reader(io.StringIO(ranking_csv(snapshot, None).decode("utf-8-sig"))))
    assert rows[1][2] == "'" + evil
    cell = load_workbook(io.BytesIO(ranking_xlsx(snapshot, None)))["ranking"]["C2"]
    assert (cell.value, cell.data_type) == (evil, "s")
