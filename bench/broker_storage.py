"""The embedded broker's storage, memory vs s3 (s3rver on disk), end to end: `votestream up`
with each, driven by `votestream loadgen` at the same open-loop rate, in turns (memory, s3,
s3, memory, ...) because this machine's speed drifts between minutes. Prints every run.

    python -m bench.broker_storage --runs 3 --rate 400 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.endtoend import PURE, SYSTEM_ENV, counted_latency, loadgen
from tests.support.system import start_system, stop_system


def one_run(storage: str, rate: float, seconds: float, work: Path) -> dict[str, Any]:
    env = {**SYSTEM_ENV, "VOTESTREAM_BROKER_STORAGE": storage}
    system = start_system(work / storage, env)
    try:
        load = ["--rate", str(rate), "--channels", "web", *PURE]
        summary = loadgen(system, load, seconds, work)
        counted = asyncio.run(counted_latency(system, summary["campaign"]))
    finally:
        stop_system(system)
    return {
        "storage": storage,
        "ok": summary["ok"],
        "accepted_per_s": summary["accepted_per_s"],
        "p99_ms": summary["latency_ms"]["web"]["p99"],
        **{k: round(v, 1) for k, v in counted.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of each storage")
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for n in range(args.runs):
        order = ("memory", "s3") if n % 2 == 0 else ("s3", "memory")
        for storage in order:
            with tempfile.TemporaryDirectory() as work:
                row = one_run(storage, args.rate, args.duration, Path(work))
            print(json.dumps(row), flush=True)
            rows.append(row)
    for storage in ("memory", "s3"):
        mine = [r["counted_per_s"] for r in rows if r["storage"] == storage]
        print(f"{storage}: counted/s {mine} (median {sorted(mine)[len(mine) // 2]})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
