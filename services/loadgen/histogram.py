"""Latency percentiles HdrHistogram-style: every sample kept at 3 significant digits."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 120_000_000, 3  # 1 µs .. 2 min


class Latencies:
    def __init__(self) -> None:
        self.hist = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)

    def record(self, seconds: float) -> None:
        self.hist.record_value(min(max(int(seconds * 1e6), LOWEST_US), HIGHEST_US))

    @property
    def count(self) -> int:
        return int(self.hist.get_total_count())

    def ms(self, percentile: float) -> float:
        """The latency at `percentile` (0-100) in milliseconds; 0 when nothing was recorded."""
        return float(self.hist.get_value_at_percentile(percentile)) / 1000 if self.count else 0.0

    def merge(self, other: Latencies) -> None:
        self.hist.add(other.hist)

    def encode(self) -> bytes:
        """Compressed, to ship from a worker process to the one that reports."""
        return bytes(self.hist.encode())

    @classmethod
    def decode(cls, data: bytes) -> Latencies:
        out = cls()
        out.hist.decode_and_add(data)
        return out

    def summary(self) -> str:
        parts = [f"p{p:g} {self.ms(p):.1f}" for p in (50, 90, 99, 99.9)]
        return " ".join(parts) + f" max {self.ms(100):.1f} ms"
