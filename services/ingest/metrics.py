"""Ingest metrics, on an injected registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.domain.campaign import CHANNELS

# Awaited-ack latencies on loopback sit at 1-20 ms; bursts push the tail to ~0.5 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REQUEST_OUTCOMES = ("accepted", "rejected", "rate_limited", "unavailable", "error")
KIOSK_BATCH_OUTCOMES = ("accepted", "replayed", "refused", "unavailable")
CHAIN_BREAK_KINDS = ("gap", "fork")  # services.ingest.kiosk.chain.BreakKind
WECHAT_MESSAGE_KINDS = ("vote", "list", "results", "help", "switch", "event", "retry", "other")


@dataclass(frozen=True)
class IngestMetrics:
    requests: Counter
    latency: Histogram
    rejections: Counter
    kiosk_batches: Counter
    kiosk_chain_breaks: Counter
    otp_requests: Counter
    wechat_messages: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        metrics = cls(
            requests=Counter(
                "votestream_ingest_requests",
                "Ballot requests by channel and outcome",
                ["channel", "outcome"],
                registry=registry,
            ),
            latency=Histogram(
                "votestream_ingest_request_seconds",
                "Ballot request latency",
                ["channel"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            rejections=Counter(
                "votestream_ingest_rejections",
                "Ballots refused at ingest by reason",
                ["channel", "reason"],
                registry=registry,
            ),
            kiosk_batches=Counter(
                "votestream_kiosk_batches",
                "Kiosk batch uploads by outcome",
                ["outcome"],
                registry=registry,
            ),
            kiosk_chain_breaks=Counter(
                "votestream_kiosk_chain_breaks",
                "Kiosk hash-chain gaps and forks",
                ["kind"],
                registry=registry,
            ),
            otp_requests=Counter(
                "votestream_otp_requests",
                "Phone login requests by step (send, verify) and outcome (ok or error code)",
                ["step", "outcome"],
                registry=registry,
            ),
            wechat_messages=Counter(
                "votestream_wechat_messages",
                "WeChat messages by kind (vote, list, results, help, switch, event, retry, other)",
                ["kind"],
                registry=registry,
            ),
        )
        # Series that exist from the start, so dashboards and alerts see 0 rather than nothing
        # (and rate() sees the first increment, which a series born at 1 hides).
        for channel in CHANNELS:
            for outcome in REQUEST_OUTCOMES:
                metrics.requests.labels(channel, outcome)
        for outcome in KIOSK_BATCH_OUTCOMES:
            metrics.kiosk_batches.labels(outcome)
        for kind in CHAIN_BREAK_KINDS:
            metrics.kiosk_chain_breaks.labels(kind)
        for kind in WECHAT_MESSAGE_KINDS:
            metrics.wechat_messages.labels(kind)
        return metrics
