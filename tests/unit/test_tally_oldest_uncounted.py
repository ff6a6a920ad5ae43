"""The oldest-uncounted gauge is read at scrape time: it grows while a batch is stuck."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from services.runtime.settings import Settings
from services.tally.app import Tally
from services.tally.metrics import TallyMetrics

GAUGE = "votestream_tally_oldest_uncounted_age_seconds"


def test_the_gauge_shows_the_age_of_the_oldest_pending_ballot_and_zero_when_none() -> None:
    registry = CollectorRegistry()
    tally = Tally(Settings(), TallyMetrics.create(registry))
    assert registry.get_sample_value(GAUGE) == 0
    tally.pending_since = datetime.now(UTC) - timedelta(seconds=30)
    first = registry.get_sample_value(GAUGE)
    assert first is not None and 30 <= first < 60
    tally.pending_since = datetime.now(UTC) - timedelta(seconds=90)
    later = registry.get_sample_value(GAUGE)
    assert later is not None and later >= 90
    tally.pending_since = None
    assert registry.get_sample_value(GAUGE) == 0
