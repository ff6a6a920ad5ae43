"""A progress line every second while the load runs (stderr, so stdout stays the report)."""

from __future__ import annotations

import asyncio
import sys
import time

from services.loadgen.driver import Driver


async def show_progress(driver: Driver, seconds: float, every: float = 1.0) -> None:
    stats, started = driver.stats, time.monotonic()
    last_sent, last_accepted, last_t = 0, 0, started
    live = sys.stderr.isatty()
    while True:
        await asyncio.sleep(every)
        now = time.monotonic()
        span = max(now - last_t, 1e-9)
        merged = sum((h.count for h in stats.latency.values()), 0)
        p99 = max((h.ms(99) for h in stats.latency.values()), default=0.0)
        line = (
            f"[{now - started:5.1f}/{seconds:.0f}s]"
            f"  offered {(stats.sent - last_sent) / span:7.0f}/s"
            f"  accepted {(stats.accepted - last_accepted) / span:7.0f}/s"
            f"  in flight {driver.inflight:4d}  p99 {p99:7.1f} ms  answers {merged}"
            f"  retries {stats.retries}  lost {stats.lost}"
            f"  unexpected {sum(stats.unexpected.values())}"
            f"  no answer {sum(stats.errors.values())}"
        )
        print(
            ("\r" + line) if live else line, end="" if live else "\n", file=sys.stderr, flush=True
        )
        last_sent, last_accepted, last_t = stats.sent, stats.accepted, now
