"""Campaign definitions: a valid file parses, a bad one is refused naming every error."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
import yaml

from services.domain.campaign import CHANNEL_SETTINGS, Campaign, parse_campaign, parse_duration
from services.domain.campaign_changes import CampaignLockedError, campaign_hash, classify_change
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
    assert error in _refusal(field, value)


def _refusal(field: str, value: Any) -> list[str]:
    """The errors named for the demo campaign with `field` set to `value`."""
    data = demo()
    data[field] = value
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign(data)
    return refused.value.errors


@pytest.mark.parametrize(
    "settings", ["淄博网", 5, True, [1, 2], [["name", "a"]], {"name": {"nested": [1]}}]
)
def test_a_channels_settings_that_are_not_a_flat_mapping_are_named(settings: Any) -> None:
    data = demo()
    data["channels"] = {"web": settings, "kiosk": None}
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign(data)
    assert refused.value.errors == [f"channels.web: {CHANNEL_SETTINGS}"]


def test_a_channels_flat_settings_are_kept_as_given() -> None:
    data = demo()
    data["channels"] = {"web": {"name": "网站", "order": 1, "shown": True}, "kiosk": None}
    assert parse_campaign(data).channels == {
        "web": {"name": "网站", "order": 1, "shown": True},
        "kiosk": {},
    }


def test_a_yaml_alias_bomb_in_a_channels_settings_is_refused_before_it_is_stored() -> None:
    # nine levels of nine aliases: a few hundred bytes of YAML that are 9**9 strings as JSON
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    bomb = yaml.safe_load("\n".join(levels))
    data = demo()
    data["channels"] = {"web": {"name": "网站", "extra": bomb["a8"]}}
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign(data)
    assert refused.value.errors == [f"channels.web: {CHANNEL_SETTINGS}"]


@pytest.mark.parametrize(
    ("closes_at", "grace"),
    [("2026-05-15T00:00:00+08:00", "99999999999999d"), ("9999-12-31T23:00:00+08:00", "2d")],
)
def test_a_kiosk_grace_that_ends_past_the_calendar_is_named_not_a_crash(
    closes_at: str, grace: str
) -> None:
    data = demo()
    data.update(closes_at=closes_at, kiosk_grace=grace)
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign(data)
    assert [e.split(":")[0] for e in refused.value.errors] == ["kiosk_grace"]


def test_a_kiosk_grace_that_is_not_text_is_named_without_spelling_it_out() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 6)]
    data = demo()
    data["kiosk_grace"] = yaml.safe_load("\n".join(levels))["a5"]
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign(data)
    assert refused.value.errors == ["kiosk_grace: a duration like 10m, 2h or 14d, as text"]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("channels", {1: {}, None: {}, "web": {}}, "channels: unknown channel(s) 1, None"),
        ("defenses", {1: "x"}, "defenses: unknown key(s) 1"),
        (
            "defenses",
            {"rules": [{"kind": "fresh_voter", 5: 1, "x": 2}]},
            "defenses.rules[0]: unknown key(s) 5, x for fresh_voter",
        ),
    ],
)
def test_a_key_that_is_not_text_is_named_not_a_crash(field: str, value: Any, error: str) -> None:
    # YAML reads `1:` as a number and `~:` as null: a typo in an uploaded file, not a 500
    assert error in _refusal(field, value)


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


# Which changes a campaign may take (services/domain/campaign_changes.py), pure.
NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def running(**changes: Any) -> Campaign:
    data = {
        **demo(),
        "opens_at": (NOW - timedelta(hours=1)).isoformat(),
        "closes_at": (NOW + timedelta(days=1)).isoformat(),
    }
    return parse_campaign({**data, **changes})


@pytest.mark.parametrize(
    "change",
    [
        {"candidates": [{"id": "x01", "title": "X", "unit": "u"}, *demo()["candidates"][1:]]},
        {"candidates": list(reversed(demo()["candidates"]))},  # WeChat voters vote by number
        {"ballot": {"min_selections": 1, "max_selections": 3}},
        {"limit": {"per_voter": 5, "period": "day"}},
        {"channels": {"web": {}}},
        {"opens_at": (NOW - timedelta(hours=2)).isoformat()},
        {"timezone": "UTC"},
    ],
)
def test_counting_rules_are_frozen_once_a_ballot_is_counted(change: dict[str, Any]) -> None:
    old, new = running(), running(**change)
    assert "rules" in classify_change(old, new, counted=False, sealed=False, now=NOW)
    with pytest.raises(CampaignLockedError) as refused:
        classify_change(old, new, counted=True, sealed=False, now=NOW)
    assert refused.value.code == "campaign_locked" and refused.value.status == 409


def test_wording_extending_and_closing_early_stay_possible_after_counting() -> None:
    old = running()
    renamed = [{**c, "title": c["title"] + "!", "unit": "x"} for c in demo()["candidates"]]
    wording = running(title="new", question="new?", organizer="o2", candidates=renamed)
    assert classify_change(old, wording, counted=True, sealed=False, now=NOW) == ("wording",)
    later = running(closes_at=(NOW + timedelta(days=9)).isoformat())
    assert classify_change(old, later, counted=True, sealed=False, now=NOW) == ("extended",)
    early = running(closes_at=NOW.isoformat())
    assert classify_change(old, early, counted=True, sealed=False, now=NOW) == ("closed_early",)
    assert classify_change(old, running(), counted=True, sealed=False, now=NOW) == ()


def test_closing_never_reaches_into_the_past_or_reopens() -> None:
    old = running()
    past = running(closes_at=(NOW - timedelta(minutes=1)).isoformat())
    with pytest.raises(CampaignLockedError):
        classify_change(old, past, counted=False, sealed=False, now=NOW)
    after_close = NOW + timedelta(days=2)
    with pytest.raises(CampaignLockedError, match="reopened"):
        classify_change(
            old,
            running(closes_at="2026-06-01T00:00:00Z"),
            counted=False,
            sealed=False,
            now=after_close,
        )


def test_nothing_changes_once_the_final_is_sealed() -> None:
    old = running()
    with pytest.raises(CampaignLockedError, match="sealed final"):
        classify_change(old, running(title="late"), counted=True, sealed=True, now=NOW)


def test_the_campaign_hash_covers_the_wording_but_not_the_private_defences() -> None:
    base = running()
    defended = running(defenses={"rules": []})
    assert defended.defenses is not None
    assert campaign_hash(defended) == campaign_hash(base)
    assert campaign_hash(base) == campaign_hash(parse_campaign(base.to_dict()))
    assert campaign_hash(base) != campaign_hash(running(title="other"))


def test_the_campaign_hash_is_that_of_the_public_view_without_its_status() -> None:
    """What docs/VERIFYING.md tells a reader to hash: the API's JSON less `status`."""
    defended = running(defenses={"rules": []})
    shown = orjson.loads(orjson.dumps(defended.public_view(NOW)))
    del shown["status"]
    assert hashlib.sha256(rfc8785.dumps(shown)).hexdigest() == campaign_hash(defended)
