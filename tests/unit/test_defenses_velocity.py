"""Velocity limits at ingest: per campaign, per key, refusals counted by reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.domain.ballot import Ballot, Channel
from services.domain.campaign import Campaign, parse_campaign
from services.domain.errors import ConflictError, RateLimitedError
from services.ingest.velocity import Velocity, keys_of
from tests.unit.test_campaign import demo

NOW = datetime(2026, 5, 3, 9, 0, tzinfo=UTC)


def campaign(velocity: dict[str, Any] | None) -> Campaign:
    data = demo()
    if velocity is not None:
        data["defenses"] = {"rules": [], "velocity": velocity}
    return parse_campaign(data)


def ballot(channel: Channel = "web", at: datetime = NOW, **meta: Any) -> Ballot:
    return Ballot(uuid.uuid4(), "zibo-2021-b2", channel, "vk-1", ("c01",), at, at, meta)


def refusals(registry: CollectorRegistry, channel: str, reason: str) -> float | None:
    return registry.get_sample_value(
        "votestream_ingest_velocity_refusals_total", {"channel": channel, "reason": reason}
    )


def test_a_campaign_without_defenses_is_never_metered() -> None:
    velocity = Velocity(CollectorRegistry())
    for _ in range(500):
        velocity.check(campaign(None), ballot(ip_prefix="203.0.113.0/24"))


def test_one_network_prefix_is_refused_past_its_burst_with_retry_after() -> None:
    registry = CollectorRegistry()
    velocity, guarded = Velocity(registry), campaign({"ip_prefix": {"per_minute": 6, "burst": 3}})
    for channel, reason in (
        ("web", "ip_prefix"),
        ("web", "device"),
        ("kiosk", "kiosk"),
        ("wechat", "wechat_openid"),
    ):
        assert refusals(registry, channel, reason) == 0, reason  # the series start at 0
    assert (
        registry.get_sample_value(
            "votestream_ingest_velocity_refusals_total", {"channel": "web", "reason": "kiosk"}
        )
        is None
    )
    for _ in range(3):
        velocity.check(guarded, ballot(ip_prefix="203.0.113.0/24"))
    with pytest.raises(RateLimitedError) as refused:
        velocity.check(guarded, ballot(ip_prefix="203.0.113.0/24"))
    assert refused.value.status == 429 and refused.value.code == "velocity_limited"
    assert 1 <= refused.value.retry_after <= 10
    velocity.check(guarded, ballot(ip_prefix="198.51.100.0/24"))  # another network is fine
    assert refusals(registry, "web", "ip_prefix") == 1


def test_limits_are_per_campaign() -> None:
    velocity = Velocity(CollectorRegistry())
    first = campaign({"ip_prefix": {"per_minute": 1, "burst": 1}})
    second = parse_campaign({**first.to_dict(), "id": "other"})
    velocity.check(first, ballot(ip_prefix="203.0.113.0/24"))
    velocity.check(second, ballot(ip_prefix="203.0.113.0/24"))


def test_a_kiosk_is_metered_on_cast_time_so_an_offline_batch_of_real_voters_passes() -> None:
    registry = CollectorRegistry()
    velocity, guarded = Velocity(registry), campaign({"kiosk": {"per_minute": 2, "burst": 2}})
    for minute in range(30):  # two an hour apart... uploaded at once
        velocity.check(guarded, ballot("kiosk", NOW + timedelta(minutes=minute), device_id="k1"))
    with pytest.raises(RateLimitedError):
        for second in range(5):  # five in five seconds: not humans at a kiosk
            velocity.check(
                guarded, ballot("kiosk", NOW + timedelta(hours=1, seconds=second), device_id="k1")
            )
    assert refusals(registry, "kiosk", "kiosk") == 1


def test_wechat_messages_are_metered_by_voter_key_and_refused_with_a_reply() -> None:
    velocity, guarded = (
        Velocity(CollectorRegistry()),
        campaign({"wechat_openid": {"per_minute": 1}}),
    )
    velocity.check(guarded, ballot("wechat"))
    with pytest.raises(ConflictError) as refused:
        velocity.check(guarded, ballot("wechat"))
    assert refused.value.code == "velocity_limited"


def test_the_keys_hold_no_raw_identity() -> None:
    web = ballot(ip_prefix="203.0.113.0/24")
    assert keys_of(web, "f" * 32) == [("ip_prefix", "203.0.113.0/24"), ("device", "f" * 32)]
    assert keys_of(ballot("wechat"), None) == [("wechat_openid", "vk-1")]
    assert keys_of(ballot("kiosk", device_id="k9"), None) == [("kiosk", "k9")]
