"""Campaign definitions: a valid file parses, a bad one is refused naming every error."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.domain.campaign import parse_campaign, parse_duration
from services.domain.errors import CampaignInvalidError

DEMO = Path(__file__).resolve().parents[2] / "campaigns" / "zibo-2021-b2.yaml"


def demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data.setdefault("opens_at", "2026-05-01T00:00:00+08:00")
    data.setdefault("closes_at", "2026-05-15T00:00:00+08:00")
    return data


def test_the_demo_campaign_parses_with_its_rules() -> None:
    campaign = parse_campaign(demo())
    assert campaign.id == "zibo-2021-b2"
    assert len(campaign.candidates) == 25 and campaign.top_n == 10
    assert campaign.cutoff == campaign.closes_at + campaign.kiosk_grace


def test_a_campaign_with_many_errors_names_every_one_and_loads_nothing() -> None:
    data = demo()
    data.update(
        id="Bad Id!",
        timezone="Mars/Olympus",
        closes_at="2026-04-01T00:00:00+08:00",
        top_n=99,
        ballot={"min_selections": 3, "max_selections": 2},
        limit={"per_voter": 0, "period": "week"},
        channels={"web": {}, "fax": {}},
        kiosk_grace="soon",
    )
    data["candidates"] = [*data["candidates"][:3], dict(data["candidates"][0])]
    del data["title"]
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign(data)
    named = [e.split(":")[0] for e in refused.value.errors]
    assert named == [
        "id",
        "timezone",
        "closes_at",
        "candidates[3].id",
        "ballot.max_selections",
        "top_n",
        "limit.per_voter",
        "limit.period",
        "channels",
        "kiosk_grace",
        "title",
    ]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("opens_at", "2026-05-01T00:00:00", "opens_at: needs a UTC offset"),
        ("opens_at", "yesterday", "opens_at: 'yesterday' is not an RFC 3339 time"),
        ("candidates", [], "candidates: a non-empty list is required"),
        ("top_n", True, "top_n: must be a whole number"),
    ],
)
def test_each_kind_of_bad_field_is_named(field: str, value: Any, error: str) -> None:
    data = demo()
    data[field] = value
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign(data)
    assert error in refused.value.errors


def test_a_campaign_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(CampaignInvalidError, match="must be a mapping"):
        parse_campaign(["not", "a", "campaign"])


def test_durations_read_seconds_to_days_and_refuse_the_rest() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("14d") == timedelta(days=14)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("2 weeks")


def test_to_dict_round_trips_through_the_parser() -> None:
    campaign = parse_campaign(demo())
    assert parse_campaign(campaign.to_dict()) == campaign
