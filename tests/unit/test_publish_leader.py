"""A new leader hands each recent latest snapshot to every channel again, so a final stored
by a leader that died before delivering it still reaches them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from services.domain.campaign import Campaign, parse_campaign
from services.publish.leader import PublishRound
from services.publish.metrics import PublishMetrics
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore

NOW = datetime.now(UTC)


def campaign(cid: str) -> Campaign:
    return parse_campaign(
        {
            "id": cid,
            "title": "t",
            "organizer": "o",
            "question": "q",
            "timezone": "UTC",
            "opens_at": (NOW - timedelta(days=30)).isoformat(),
            "closes_at": (NOW - timedelta(days=1)).isoformat(),
            "candidates": [{"id": "c1", "title": "C1", "unit": "u"}],
        }
    )


class LatestOnly:
    def __init__(self, latest: dict[str, dict[str, Any]]) -> None:
        self.snapshots = latest

    async def latest(self, campaign_id: str, *, final: bool = False) -> dict[str, Any] | None:
        return self.snapshots.get(campaign_id)


class Recorder:
    def __init__(self) -> None:
        self.got: list[tuple[str, int]] = []

    async def push(self, snapshot: dict[str, Any]) -> None:
        self.got.append((snapshot["campaign_id"], snapshot["seq"]))


async def test_resuming_pushes_recent_latest_snapshots_again_and_leaves_old_ones() -> None:
    recent = {"campaign_id": "recent", "seq": 9, "final": True, "as_of": NOW.isoformat()}
    old_time = (NOW - timedelta(days=1)).isoformat()
    old = {"campaign_id": "old", "seq": 4, "final": True, "as_of": old_time}
    store = cast(SnapshotStore, LatestOnly({"recent": recent, "old": old}))
    sink = Recorder()

    async def no_cutoff(_: Campaign) -> int:
        return 0

    publisher = Publisher(store, Ed25519PrivateKey.generate(), no_cutoff, [sink])
    campaigns = [campaign("recent"), campaign("old"), campaign("empty")]
    metrics = PublishMetrics.create(CollectorRegistry())
    await PublishRound(lambda: campaigns, publisher, store, metrics).resume()
    assert sink.got == [("recent", 9)]


class Unchanged:
    async def publish(self, campaign: Campaign) -> None:
        return None


async def test_results_age_restarts_at_each_round_and_goes_when_the_lead_is_lost() -> None:
    registry = CollectorRegistry()
    metrics = PublishMetrics.create(registry)
    nothing = cast(SnapshotStore, None)
    work = PublishRound(lambda: [campaign("c")], cast(Publisher, Unchanged()), nothing, metrics)
    await work()
    age = registry.get_sample_value("votestream_publish_snapshot_age_seconds", {"campaign": "c"})
    assert age is not None and 0 <= age < 1
    work.current_at["c"] -= 120  # two minutes without a successful round
    age = registry.get_sample_value("votestream_publish_snapshot_age_seconds", {"campaign": "c"})
    assert age is not None and age >= 120
    work.step_down()
    assert (
        registry.get_sample_value("votestream_publish_snapshot_age_seconds", {"campaign": "c"})
        is None
    )
