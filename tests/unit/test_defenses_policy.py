"""The `defenses:` section of a campaign: parsed, validated naming every error, round-tripped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from services.domain.campaign import parse_campaign
from services.domain.defenses import KINDS, strongest
from services.domain.errors import CampaignInvalidError
from tests.unit.test_campaign import demo

SECTION: dict[str, Any] = {
    "rules": [
        {"kind": "identical_selections", "window": "30s", "min_ballots": 4, "action": "hold"},
        {"kind": "candidate_burst", "factor": 2.5, "action": "count"},
        {"name": "fresh_login", "kind": "fresh_voter", "min_age": "15s", "action": "reject"},
    ],
    "velocity": {"ip_prefix": {"per_minute": 60, "burst": 20}, "kiosk": {"per_minute": 6}},
}


def test_a_campaign_without_defenses_has_none_and_its_definition_is_unchanged() -> None:
    campaign = parse_campaign(demo())
    assert campaign.defenses is None
    assert "defenses" not in campaign.to_dict()


def test_the_section_parses_into_rules_with_defaults_filled_in() -> None:
    defenses = parse_campaign({**demo(), "defenses": SECTION}).defenses
    assert defenses is not None
    cluster, burst, fresh = defenses.rules
    assert (cluster.name, cluster.action, cluster.param("window")) == (
        "identical_selections",
        "hold",
        timedelta(seconds=30),
    )
    assert burst.param("factor") == 2.5 and burst.param("min_votes") == 20
    assert (fresh.name, fresh.kind, fresh.seconds("min_age")) == ("fresh_login", "fresh_voter", 15)
    kiosk = defenses.limit("kiosk")
    assert kiosk is not None and (kiosk.per_minute, kiosk.burst) == (6, 6)
    assert defenses.limit("device") is None


def test_the_section_round_trips_through_the_definition() -> None:
    campaign = parse_campaign({**demo(), "defenses": SECTION})
    again = parse_campaign(campaign.to_dict())
    assert again.defenses == campaign.defenses
    assert again.to_dict() == campaign.to_dict()


def test_an_empty_section_turns_on_every_built_in_kind_counting_only() -> None:
    defenses = parse_campaign({**demo(), "defenses": {}}).defenses
    assert defenses is not None
    assert [r.kind for r in defenses.rules] == list(KINDS)
    assert {r.action for r in defenses.rules} == {"count"}


def test_a_bad_section_is_refused_naming_every_error() -> None:
    bad = {
        "rules": [
            {"kind": "mind_reading"},
            {"kind": "fresh_voter", "action": "shrug", "min_age": 10},
            {"kind": "candidate_burst", "factor": -1, "color": "red", "name": "Bad Name"},
            "not a rule",
        ],
        "velocity": {"ip_prefix": {"per_minute": 0}, "satellite": {"per_minute": 1}},
        "extra": True,
    }
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign({**demo(), "defenses": bad})
    assert set(refused.value.errors) == {
        "defenses: unknown key(s) extra",
        "defenses.rules[0].kind: must be one of candidate_burst, identical_selections, fresh_voter",
        "defenses.rules[1].action: must be one of count, hold, reject",
        "defenses.rules[1].min_age: 10 is not a duration like 30s, 5m or 1h",
        "defenses.rules[2].name: use 1-40 lower-case letters, digits or '_'",
        "defenses.rules[2]: unknown key(s) color for candidate_burst",
        "defenses.rules[2].factor: must be a positive number",
        "defenses.rules[3]: must be a mapping with kind and action",
        "defenses.velocity.ip_prefix: needs per_minute (and optional burst), whole numbers >= 1",
        "defenses.velocity.satellite: unknown key,"
        " use one of ip_prefix, device, wechat_openid, kiosk",
    }


def test_a_yaml_alias_bomb_as_a_parameter_is_named_not_expanded() -> None:
    # six levels of nine aliases: a few hundred bytes of YAML, half a million strings as text
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 6)]
    bomb = yaml.safe_load("\n".join(levels))["a5"]
    rules = [{"kind": "fresh_voter", "min_age": bomb}, {"kind": "candidate_burst", "factor": bomb}]
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign({**demo(), "defenses": {"rules": rules}})
    assert refused.value.errors == [
        "defenses.rules[0].min_age: a list is not a duration like 30s, 5m or 1h",
        "defenses.rules[1].factor: must be a positive number",
    ]


def test_a_window_longer_than_a_calendar_holds_is_named_not_a_crash() -> None:
    rules = [{"kind": "candidate_burst", "window": "99999999999999h"}]
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign({**demo(), "defenses": {"rules": rules}})
    assert refused.value.errors == [
        "defenses.rules[0].window: '99999999999999h' is not a duration like 30s, 5m or 1h"
    ]


def test_two_rules_with_one_name_are_refused() -> None:
    twice = {"rules": [{"kind": "fresh_voter"}, {"kind": "fresh_voter"}]}
    with pytest.raises(CampaignInvalidError) as refused:
        parse_campaign({**demo(), "defenses": twice})
    assert refused.value.errors == ["defenses.rules[1].name: 'fresh_voter' appears twice"]


def test_the_strongest_action_wins() -> None:
    assert strongest(["count", "reject", "hold"]) == "reject"
    assert strongest(["count", "hold"]) == "hold"
    assert strongest([]) == "count"
