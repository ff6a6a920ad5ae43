"""Publish metrics, on an injected registry; every bounded label value starts at 0."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

WEBHOOK_OUTCOMES = ("delivered", "retried", "failed")


@dataclass(frozen=True)
class PublishMetrics:
    snapshots: Counter
    snapshot_age: Gauge
    webhook_deliveries: Counter
    streams_open: Gauge
    streams_refused: Counter  # over VOTESTREAM_SSE_MAX_CONNECTIONS (stream.py)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> PublishMetrics:
        metrics = cls(
            snapshots=Counter(
                "votestream_publish_snapshots", "Snapshots published", ["final"], registry=registry
            ),
            snapshot_age=Gauge(
                "votestream_publish_snapshot_age_seconds",
                "Seconds since a campaign's published snapshot was last known to match the counts",
                ["campaign"],
                registry=registry,
            ),
            webhook_deliveries=Counter(
                "votestream_publish_webhook_deliveries",
                "Webhook deliveries by outcome (retried counts each failed attempt retried)",
                ["outcome"],
                registry=registry,
            ),
            streams_open=Gauge(
                "votestream_publish_streams_open", "Live result streams open", registry=registry
            ),
            streams_refused=Counter(
                "votestream_publish_streams_refused",
                "Live result streams refused with 503: the process had its maximum open",
                registry=registry,
            ),
        )
        for final in ("true", "false"):
            metrics.snapshots.labels(final)
        for outcome in WEBHOOK_OUTCOMES:
            metrics.webhook_deliveries.labels(outcome)
        return metrics
