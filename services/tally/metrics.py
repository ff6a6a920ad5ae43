"""Tally metrics, on an injected registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.domain.defenses import KINDS

# A batch is 1-2000 ballots in one transaction: ~2-60 ms on one core.
BATCH_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# received -> counted is the batch window (50 ms) plus the transaction, unless backlogged.
E2E_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
# Labelled by detector kind, never by a campaign's own rule name: bounded, each starts at 0.
DETECTION_RULES = KINDS


@dataclass(frozen=True)
class TallyMetrics:
    counted: Counter
    rejected: Counter
    duplicates: Counter
    batch_seconds: Histogram
    batch_size: Histogram
    end_to_end: Histogram
    lag: Gauge
    oldest_uncounted: Gauge
    detections: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> TallyMetrics:
        metrics = cls(
            counted=Counter(
                "votestream_tally_ballots_counted",
                "Ballots counted",
                ["channel"],
                registry=registry,
            ),
            rejected=Counter(
                "votestream_tally_ballots_rejected",
                "Ballots rejected by reason",
                ["channel", "reason"],
                registry=registry,
            ),
            duplicates=Counter(
                "votestream_tally_duplicates",
                "Records whose ballot_id was already stored (redelivery, retries)",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "votestream_tally_batch_seconds",
                "Time to decide and store one batch",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                "votestream_tally_batch_size",
                "Records per batch",
                buckets=SIZE_BUCKETS,
                registry=registry,
            ),
            end_to_end=Histogram(
                "votestream_tally_end_to_end_seconds",
                "From received_at at ingest to counted in Postgres",
                buckets=E2E_BUCKETS,
                registry=registry,
            ),
            lag=Gauge(
                "votestream_tally_consumer_lag",
                "Records behind the broker's reported end offset (wrong on embedded Tansu)",
                ["partition"],
                registry=registry,
            ),
            oldest_uncounted=Gauge(
                "votestream_tally_oldest_uncounted_age_seconds",
                "Age of the oldest ballot fetched but not yet stored",
                registry=registry,
            ),
            detections=Counter(
                "votestream_tally_detections",
                "Ballots a ballot-stuffing detection rule matched",
                ["rule"],
                registry=registry,
            ),
        )
        for rule in DETECTION_RULES:
            metrics.detections.labels(rule)
        return metrics
