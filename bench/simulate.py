"""A 40-minute vote peaking at 25,000 ballots/s, simulated second by second on the capacity
model of docs/SCALING.md with the per-core rates measured by this `make bench` run.

    python -m bench.simulate [bench/results.json]

Sizing: ingest replicas and tally workers run at <= 70% of their measured rate at the peak;
partitions are twice the workers (room to double them without repartitioning). The
simulation then plays the traffic profile through ingest -> Kafka -> tally -> Postgres and
reports the Kafka backlog, the worst received->counted delay, and which part saturates first
as the peak grows.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

PEAK = 25_000.0
MINUTES = 40
HEADROOM = 0.7
PG_CORES = 8  # a production primary; the measured per-connection sink rate scales with it
PG_EFFICIENCY = 0.6  # concurrent writers on one primary: WAL and index contention
BROKERS = 3
# Used when run without a results file: the figures measured before the first `make bench`
# (2 shared cores).
DEFAULTS = {"ingest": 6_800.0, "tally": 15_500.0, "pg_sink": 20_000.0, "broker": 50_000.0}


def rates(results: dict[str, Any] | None) -> dict[str, float]:
    """Per-process rates: ingest (HTTP in, acks), Faust tally worker, Postgres sink per
    connection, broker produce."""
    if not results:
        return dict(DEFAULTS)
    parts, vs = results["parts"], results["votestream"]
    return {
        "ingest": float(vs["capacity"]["accepted_per_s"]),
        "tally": float(parts["tally_alone"]["faust"]["rate"]),
        "pg_sink": float(parts["transport"]["pg_tally_store"]),
        "broker": float(parts["transport"]["broker_produce"]),
    }


def demand(second: int) -> float:
    """Ramp up for 5 minutes (the TV push), hold the peak 30, ramp down 5."""
    minute = second / 60
    if minute < 5:
        return PEAK * max(minute / 5, 0.08)
    if minute < 35:
        return PEAK
    return PEAK * max((40 - minute) / 5, 0.08)


def sizing(r: dict[str, float], peak: float = PEAK) -> dict[str, Any]:
    replicas = math.ceil(peak / (r["ingest"] * HEADROOM))
    per_worker = min(r["tally"], r["pg_sink"])
    workers = math.ceil(peak / (per_worker * HEADROOM))
    partitions = max(12, 12 * math.ceil(2 * workers / 12))
    batches = workers * 20  # a batch per worker every 50 ms window at the peak
    pg_rows = peak * 2 + batches * 25 * 2  # ballots + voter usage, + tally/outcome upserts
    return {
        "ingest_replicas": replicas,
        "tally_workers": workers,
        "partitions": partitions,
        "postgres_rows_per_s": round(pg_rows),
        "postgres_capacity_rows_per_s": round(r["pg_sink"] * 2 * PG_CORES * PG_EFFICIENCY),
        "broker_capacity": round(r["broker"] * BROKERS),
    }


def capacities(r: dict[str, float], size: dict[str, Any]) -> dict[str, float]:
    """Ballots/s each part can take with that sizing."""
    return {
        "ingest": size["ingest_replicas"] * r["ingest"],
        "kafka": size["broker_capacity"],
        "tally": min(size["tally_workers"], size["partitions"]) * r["tally"],
        "postgres": size["postgres_capacity_rows_per_s"] / 2,
    }


def play(r: dict[str, float], size: dict[str, Any]) -> dict[str, Any]:
    cap = capacities(r, size)
    admitted = min(cap["ingest"], cap["kafka"])
    drain = min(cap["tally"], cap["postgres"])
    backlog = worst_backlog = worst_delay = refused = 0.0
    for second in range(MINUTES * 60):
        offered = demand(second)
        taken = min(offered, admitted)
        refused += offered - taken  # answered 503 + Retry-After: clients come back later
        backlog = max(0.0, backlog + taken - drain)
        worst_backlog = max(worst_backlog, backlog)
        worst_delay = max(worst_delay, backlog / drain)
    first = min(cap, key=lambda k: cap[k])
    return {
        "ballots": round(sum(demand(s) for s in range(MINUTES * 60))),
        "capacities": {k: round(v) for k, v in cap.items()},
        "refused_503": round(refused),
        "worst_backlog": round(worst_backlog),
        "worst_queue_delay_s": round(worst_delay, 2),
        "breaks_first": first,
        "breaks_at_per_s": round(cap[first]),
    }


def simulate(results: dict[str, Any] | None) -> dict[str, Any]:
    r = rates(results)
    size = sizing(r)
    return {"rates": {k: round(v) for k, v in r.items()}, "sizing": size, "run": play(r, size)}


def describe(sim: dict[str, Any]) -> str:
    s, run = sim["sizing"], sim["run"]
    return "\n".join(
        [
            f"40 min, peak {PEAK:,.0f} ballots/s, {run['ballots']:,} ballots in all",
            f"per-process rates used: {sim['rates']}",
            f"ingest replicas {s['ingest_replicas']}, tally workers {s['tally_workers']},"
            f" partitions {s['partitions']}, brokers {BROKERS}",
            f"Postgres writes {s['postgres_rows_per_s']:,} rows/s at the peak"
            f" (model capacity {s['postgres_capacity_rows_per_s']:,} rows/s on {PG_CORES} cores)",
            f"capacities (ballots/s): {run['capacities']}",
            f"refused with 503: {run['refused_503']:,};"
            f" worst Kafka backlog {run['worst_backlog']:,}"
            f" ({run['worst_queue_delay_s']} s of tally work)",
            f"breaks first: {run['breaks_first']} at {run['breaks_at_per_s']:,} ballots/s",
        ]
    )


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    results = json.loads(path.read_text()) if path and path.exists() else None
    print(describe(simulate(results)))


if __name__ == "__main__":
    main()
