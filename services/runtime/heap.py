"""The garbage collector settled for a long-running service with a hot path.

A service imports and builds some hundred thousand objects (aiohttp, Faust, aiokafka, asyncpg,
prometheus_client) that live as long as the process. Every full collection walks them all
again, and the ballots a busy process makes and drops trigger collections constantly: in the
tally, decoding a 2000-ballot batch spent 40% of its CPU in the collector (bench/tally_cpu.py).
`gc.freeze()` moves what exists at start out of the collector's view for good, and a larger
first-generation threshold collects less often. Reference counting still frees every ballot
at once; only cycles wait a little longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def settle_heap() -> None:
    """Call once the service is built, just before it starts serving."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
