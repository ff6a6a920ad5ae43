"""Each detector on hand-made streams: what it flags, what it leaves alone, its evidence."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.domain.campaign import parse_campaign
from services.domain.defenses import Defenses, Rule
from services.domain.detectors import (
    Seen,
    bucket_counts,
    candidate_bursts,
    fresh_voters,
    identical_selections,
    screen,
    source_of,
)
from tests.unit.test_campaign import demo

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def defenses(*rules: dict[str, Any]) -> Defenses:
    parsed = parse_campaign({**demo(), "defenses": {"rules": list(rules)}}).defenses
    assert parsed is not None
    return parsed


def rule(**spec: Any) -> Rule:
    return defenses(spec).rules[0]


def ballot(
    at: float,
    selections: Sequence[str] = ("c01", "c02"),
    source: str | None = "203.0.113.0/24",
    iat_before: float | None = None,
) -> Seen:
    moment = T0 + timedelta(seconds=at)
    iat = moment - timedelta(seconds=iat_before) if iat_before is not None else None
    return Seen(uuid.uuid4(), tuple(selections), source, moment, moment, iat)


def matched(detections: Sequence[Any]) -> set[uuid.UUID]:
    return {b for d in detections for b in d.ballot_ids}


def test_the_source_is_the_network_prefix_or_the_kiosk_and_none_for_wechat() -> None:
    assert source_of({"ip_prefix": "198.51.100.0/24"}) == "198.51.100.0/24"
    assert source_of({"device_id": "hall-3"}) == "kiosk:hall-3"
    assert source_of({}) is None


def test_fresh_voters_are_those_casting_within_min_age_of_their_token() -> None:
    fresh = [ballot(i, iat_before=2) for i in range(3)]
    settled = [ballot(i, iat_before=300) for i in range(5)]
    no_token = [ballot(1, source=None)]
    found = fresh_voters(rule(kind="fresh_voter", min_age="10s"), [*fresh, *settled, *no_token])
    assert matched(found) == {b.ballot_id for b in fresh}
    (detection,) = found
    assert detection.subject == "203.0.113.0/24"
    assert detection.evidence == {
        "prefix": "203.0.113.0/24",
        "min_age_seconds": 10.0,
        "ballots_matched": 3,
    }


def test_a_click_farm_with_identical_selections_is_flagged_from_the_threshold_on() -> None:
    farm = [ballot(i, ("c03", "c07")) for i in range(8)]
    cluster = rule(kind="identical_selections", window="60s", min_ballots=5)
    found = identical_selections(cluster, farm[:2], farm[2:])
    assert matched(found) == {b.ballot_id for b in farm[4:]}  # the 5th and later
    (detection,) = found
    assert detection.subject == "203.0.113.0/24 c03,c07"
    assert detection.evidence["ballots_in_window"] == 8
    assert detection.evidence["ballots_matched"] == 4


def test_identical_selections_spread_out_in_time_or_space_are_left_alone() -> None:
    cluster = rule(kind="identical_selections", window="60s", min_ballots=3)
    slow = [ballot(i * 61, ("c01",)) for i in range(6)]  # one a minute from one network
    spread = [ballot(1, ("c01",), source=f"10.0.{i}.0/24") for i in range(6)]
    varied = [ballot(1, (f"c{i:02}",)) for i in range(1, 7)]
    wechat = [ballot(1, ("c01",), source=None) for _ in range(6)]
    for stream in (slow, spread, varied, wechat):
        assert identical_selections(cluster, [], stream) == []


def test_selection_order_does_not_hide_a_cluster() -> None:
    cluster = rule(kind="identical_selections", window="60s", min_ballots=3)
    shuffled = [ballot(0, ("c01", "c02")), ballot(1, ("c02", "c01")), ballot(2, ("c01", "c02"))]
    assert len(matched(identical_selections(cluster, [], shuffled))) == 1


def test_a_kiosk_cluster_is_found_by_cast_time_even_when_uploaded_in_one_batch() -> None:
    cluster = rule(kind="identical_selections", window="60s", min_ballots=4)
    kiosk = [ballot(i * 5, ("c09",), source="kiosk:hall-1") for i in range(6)]
    assert len(matched(identical_selections(cluster, [], kiosk))) == 3


def test_a_burst_against_the_candidates_own_baseline_is_flagged() -> None:
    burst = rule(kind="candidate_burst", window="10s", baseline_windows=3, factor=3, min_votes=5)
    steady = [ballot(w * 10 + i, (c,)) for w in range(3) for i in range(4) for c in ("c01", "c02")]
    spike = [ballot(31 + i * 0.1, ("c01",)) for i in range(20)]
    calm = [ballot(32, ("c02",)) for _ in range(4)]
    found = candidate_bursts(burst, bucket_counts(burst, steady), [*spike, *calm])
    assert {d.subject for d in found} == {"c01"}
    assert matched(found) <= {b.ballot_id for b in spike}
    (detection,) = found
    assert detection.evidence["baseline_per_window"] == 4.0
    assert detection.evidence["votes_in_window"] == 20
    assert detection.window_end - detection.window_start == timedelta(seconds=10)


def test_steady_traffic_and_a_slow_rise_are_not_bursts() -> None:
    burst = rule(kind="candidate_burst", window="10s", baseline_windows=3, factor=3, min_votes=5)
    steady = [ballot(w * 10 + i, ("c01",)) for w in range(6) for i in range(6)]
    rising = [ballot(w * 10 + i, ("c02",)) for w in range(6) for i in range(w + 1)]
    history, later = [*steady[:18], *rising[:6]], [*steady[18:], *rising[6:]]
    assert candidate_bursts(burst, bucket_counts(burst, history), later) == []


def test_with_no_baseline_the_floor_min_votes_decides() -> None:
    burst = rule(kind="candidate_burst", window="10s", min_votes=10)
    first = [ballot(i * 0.1, ("c05",)) for i in range(12)]
    assert len(matched(candidate_bursts(burst, {}, first))) == 3  # the 10th, 11th, 12th


def test_screen_gives_a_ballot_matched_twice_the_strongest_action() -> None:
    policy = defenses(
        {"kind": "fresh_voter", "min_age": "10s", "action": "hold"},
        {"kind": "identical_selections", "min_ballots": 2, "action": "reject"},
    )
    fresh_and_farmed = [ballot(i, ("c04",), iat_before=1) for i in range(2)]
    only_fresh = ballot(3, ("c05",), source="10.9.9.0/24", iat_before=1)
    honest = ballot(4, ("c06",), source="10.8.8.0/24", iat_before=600)
    result = screen(policy, [], [*fresh_and_farmed, only_fresh, honest])
    assert result.verdicts[fresh_and_farmed[0].ballot_id] == ("hold", "fresh_voter")
    assert result.verdicts[fresh_and_farmed[1].ballot_id] == ("reject", "identical_selections")
    assert result.verdicts[only_fresh.ballot_id] == ("hold", "fresh_voter")
    assert honest.ballot_id not in result.verdicts


def test_evidence_never_holds_a_voter_identity() -> None:
    policy = defenses({"kind": "fresh_voter"}, {"kind": "identical_selections", "min_ballots": 2})
    stream = [ballot(i, iat_before=1) for i in range(3)]
    for detection in screen(policy, [], stream).detections:
        assert set(detection.evidence) <= {
            "prefix",
            "selections",
            "window_seconds",
            "min_age_seconds",
            "ballots_matched",
            "ballots_in_window",
        }
