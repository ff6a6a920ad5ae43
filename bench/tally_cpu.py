"""CPU per ballot of the tally's own Python work, without Kafka or PostgreSQL: the records'
decode, the batch's decisions and the write payload, on 2000-ballot batches.

    python -m bench.tally_cpu [--ballots 20000] [--rounds 5]

Process CPU time, not wall-clock time, so that other work on the machine moves the figures
little; run it in turns against another version of the code to compare the two.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

from aiokafka.structs import ConsumerRecord

from bench.ballots import encoded, make_ballots
from services.runtime.campaigns import read_campaign_file
from services.runtime.kafka import BALLOTS
from services.tally.app import _records
from services.tally.counting import decide_batch
from services.tally.store import _payload
from tests.support.system import DEMO

BATCH = 2000


def _cpu(work: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def measure(count: int, rounds: int) -> dict[str, float]:
    """Microseconds of CPU per ballot for each step (best of `rounds`)."""
    campaign = read_campaign_file(DEMO, open_now=True)
    values = [value for _, value in encoded(make_ballots(campaign, count))]
    # the records of a poll, as the consumer hands them to the agent
    events = [
        ConsumerRecord(BALLOTS, i % 12, i, 0, 0, None, v, None, 0, len(v), ())
        for i, v in enumerate(values)
    ]
    batches = [events[i : i + BATCH] for i in range(0, count, BATCH)]
    campaigns = {campaign.id: campaign}.get
    decoded = [_records(b)[0] for b in batches]
    decided = [decide_batch(r, campaigns, set(), {}, set()) for r in decoded]
    # the inputs live only as long as a batch in the tally: keep them out of the collector's
    # walks, which would otherwise dominate the figures (services/runtime/heap.py)
    gc.collect()
    gc.freeze()
    steps = {
        "decode": lambda: [_records(b) for b in batches],
        "decide": lambda: [decide_batch(r, campaigns, set(), {}, set()) for r in decoded],
        "payload": lambda: [_payload(d) for d in decided],
    }
    out = {name: 1e6 * _cpu(work, rounds) / count for name, work in steps.items()}
    out["total"] = sum(out.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ballots", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--young", type=int, help="the collector's first threshold")
    args = parser.parse_args()
    if args.young:
        gc.set_threshold(args.young, *gc.get_threshold()[1:])
    figures = measure(args.ballots, args.rounds)
    print(" ".join(f"{name} {value:.2f}" for name, value in figures.items()), "µs/ballot")


if __name__ == "__main__":
    main()
