"""The ballot rules as pure functions: stateless checks and the tally's decision."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign, parse_campaign
from services.domain.errors import ConflictError, RuleError
from services.domain.rules import check_ballot, check_selections, decide, period_of

OPENS = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
CLOSES = OPENS + timedelta(days=2)


def campaign(**overrides: object) -> Campaign:
    data: dict[str, object] = {
        "id": "rules",
        "title": "t",
        "organizer": "o",
        "question": "q",
        "timezone": "Asia/Shanghai",
        "opens_at": OPENS.isoformat(),
        "closes_at": CLOSES.isoformat(),
        "top_n": 2,
        "ballot": {"min_selections": 2, "max_selections": 3},
        "channels": {"web": {}, "kiosk": {}},
        "kiosk_grace": "10m",
        "candidates": [{"id": f"c{i}", "title": f"C{i}", "unit": "u"} for i in range(1, 6)],
    }
    data.update(overrides)
    return parse_campaign(data)


def ballot(
    selections: tuple[str, ...] = ("c1", "c2"),
    *,
    channel: str = "web",
    cast_at: datetime = OPENS + timedelta(hours=1),
    received_at: datetime | None = None,
    voter: str = "v1",
) -> Ballot:
    received = received_at or cast_at
    return Ballot(uuid.uuid4(), "rules", channel, voter, selections, cast_at, received)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("selections", "code"),
    [
        (("c1", "c1"), "duplicate_selection"),
        (("c1", "c9"), "unknown_candidate"),
        (("c1", "c2", "c3", "c4"), "too_many_selections"),
        (("c1",), "too_few_selections"),
    ],
)
def test_selections_breaking_a_rule_are_refused_with_its_code(
    selections: tuple[str, ...], code: str
) -> None:
    with pytest.raises(RuleError) as refused:
        check_selections(campaign(), selections)
    assert refused.value.code == code
    assert refused.value.status == 422


def test_selections_within_the_bounds_are_taken_in_order() -> None:
    assert check_selections(campaign(), ["c3", "c1", "c2"]) == ("c3", "c1", "c2")


@pytest.mark.parametrize(
    ("cast_at", "received_at", "channel", "code"),
    [
        (OPENS - timedelta(seconds=1), None, "web", "campaign_not_open"),
        (CLOSES, None, "web", "campaign_closed"),
        (CLOSES - timedelta(seconds=1), CLOSES, "web", "campaign_closed"),
        (CLOSES - timedelta(seconds=1), CLOSES + timedelta(minutes=10), "kiosk", "campaign_closed"),
        (OPENS + timedelta(hours=1), None, "wechat", "channel_closed"),
    ],
)
def test_ballots_outside_the_window_or_channel_are_refused(
    cast_at: datetime, received_at: datetime | None, channel: str, code: str
) -> None:
    late = ballot(channel=channel, cast_at=cast_at, received_at=received_at)
    with pytest.raises(ConflictError) as refused:
        check_ballot(campaign(), late)
    assert refused.value.code == code


def test_a_kiosk_may_upload_within_the_grace_after_close() -> None:
    uploaded = CLOSES + timedelta(minutes=9, seconds=59)
    check_ballot(
        campaign(),
        ballot(channel="kiosk", cast_at=CLOSES - timedelta(minutes=1), received_at=uploaded),
    )


def test_the_day_period_is_the_cast_date_in_the_campaign_time_zone() -> None:
    daily = campaign(limit={"per_voter": 1, "period": "day"})
    # 17:00 UTC on 1 May is 01:00 on 2 May in Shanghai
    assert period_of(daily, ballot(cast_at=OPENS + timedelta(hours=17))) == "2026-05-02"
    assert period_of(campaign(), ballot()) == "campaign"


def test_decide_counts_until_the_voter_limit_is_used_then_rejects() -> None:
    twice = campaign(limit={"per_voter": 2, "period": "campaign"})
    b = ballot()
    assert decide(twice, b, {("v1", "campaign"): 1}).status == "counted"
    fate = decide(twice, b, {("v1", "campaign"): 2})
    assert (fate.status, fate.reason) == ("rejected", "limit_exceeded")


def test_decide_rejects_with_the_rule_code_unknown_campaigns_and_cut_off_ballots() -> None:
    assert decide(campaign(), ballot(("c9", "c1")), {}).reason == "unknown_candidate"
    assert decide(None, ballot(), {}).reason == "unknown_campaign"
    assert decide(campaign(), ballot(), {}, cut_off=True).reason == "campaign_closed"
    assert decide(campaign(), ballot(), {}).reason is None
