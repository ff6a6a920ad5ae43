"""`make bench`: every measurement in ONE run on this machine, side by side, written to
bench/RESULTS.md (and the raw figures to bench/results.json). Bounded: about 5-8 minutes.

    .venv/bin/python -m bench.run [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import cpu, endtoend, parts, profile
from bench.http import serve_and_hammer
from bench.results import write_results
from bench.simulate import simulate
from bench.wrk import ingest_with_wrk
from services.runtime.campaigns import read_campaign_file
from tests.support.stack import start_stack
from tests.support.system import DEMO, start_system, stop_system

HERE = Path(__file__).resolve().parent


def show(name: str, value: Any) -> None:
    print(f"  {name}: {json.dumps(value, default=str)[:600]}", flush=True)


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_before": [round(x, 2) for x in load],
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }


async def part_one(work: Path, seconds: float, quick: bool) -> dict[str, Any]:
    stack = start_stack(work / "stack")
    try:
        campaign = read_campaign_file(DEMO, open_now=True)
        out: dict[str, Any] = {}
        print("bench: broker and Postgres ceilings", flush=True)
        out["transport"] = await parts.transport(stack, campaign, 20_000 if quick else 50_000)
        show("transport", out["transport"])
        print("bench: HTTP ceilings (bare, + Kafka acks=all)", flush=True)
        out["http"] = parts.http_ceilings(stack, 64, seconds)
        show("http", out["http"])
        print("bench: naive app at 1, 16, 64 clients", flush=True)
        out["naive"] = await parts.naive(stack, campaign, seconds, pool=20)
        show("naive", out["naive"])
        print("bench: Faust tally alone vs a plain aiokafka loop", flush=True)
        campaign = read_campaign_file(DEMO, open_now=True)
        out["tally_alone"] = await parts.tally_alone(
            stack, campaign, 20_000 if quick else 40_000, work / "tally"
        )
        show("tally_alone", out["tally_alone"])
        return out
    finally:
        stack.postgres.stop()
        stack.broker.stop()


async def part_two(work: Path, seconds: float) -> dict[str, Any]:
    system = start_system(work / "votestream", extra_env=endtoend.SYSTEM_ENV)
    out: dict[str, Any] = {}
    try:
        out.update(await side_by_side(system, seconds, work))
        probe = out["capacity"]
        show("capacity", {k: v for k, v in probe.items() if k != "report"})
        show("beside", out["beside"])
        capacity = max(probe["accepted_per_s"], 50.0)
        out["levels"] = await levels(system, capacity, seconds, work, "1 worker")
        print("bench: second tally worker", flush=True)
        extra = endtoend.second_tally(system, work)
        try:
            out["two_workers"] = await levels(
                system, capacity, seconds, work, "2 workers", fractions=(0.5, 1.0)
            )
        finally:
            extra.terminate()
            extra.wait(30)
        print("bench: votestream under wrk (when installed), to the published count", flush=True)
        campaign = system.new_campaign()["id"]
        secret = system.secret("web_jwt_secret")
        before, started = cpu.read(), time.monotonic()
        wrk = ingest_with_wrk(system.ingest, campaign, secret, 64, seconds)
        if wrk is not None:
            accepted = wrk["requests"] - wrk["non_2xx"]
            wrk["end_to_end"] = await endtoend.counted_after_wrk(system, campaign, accepted)
            wrk["cpu"] = used_since(before, started)
        out["ingest_wrk"] = wrk
        show("ingest_wrk", out["ingest_wrk"])
    finally:
        stop_system(system)
    return out


async def side_by_side(system: Any, seconds: float, work: Path) -> dict[str, Any]:
    """The capacity probe with the bare handler and the naive app at 64 clients, in turns
    (best of each): the machine's speed drifts between minutes, so the ratios compare runs
    made next to each other. The naive app gets a database of its own in the same PostgreSQL."""
    print("bench: votestream capacity beside bare and naive (closed loop, 64 clients)", flush=True)
    campaign = read_campaign_file(DEMO, open_now=True)
    dsn = await system_database(system, f"naive_{os.getpid()}")
    runs: dict[str, list[dict[str, Any]]] = {"capacity": [], "bare": [], "naive64": []}
    for _ in range(parts.BEST_OF):
        runs["bare"].append(serve_and_hammer(["bare"], 64, seconds))
        runs["naive64"].append(await parts.naive_level(dsn, campaign, "form", 64, seconds, 20))
        load = ["--concurrency", "64", *endtoend.PURE]
        runs["capacity"].append(await endtoend.level(system, load, seconds, work))
    return {
        "capacity": max(runs["capacity"], key=lambda r: float(r["accepted_per_s"])),
        "beside": {
            "runs": parts.BEST_OF,
            **{n: max(runs[n], key=lambda r: float(r["rate"])) for n in ("bare", "naive64")},
        },
    }


async def system_database(system: Any, name: str) -> str:
    base = f"postgresql://votestream@127.0.0.1:{system.ports['PG']}"
    conn = await asyncpg.connect(f"{base}/votestream")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{base}/{name}"


async def levels(
    system: Any,
    capacity: float,
    seconds: float,
    work: Path,
    label: str,
    fractions: tuple[float, ...] = (0.25, 0.5, 1.0),
) -> list[dict[str, Any]]:
    found = []
    pids = endtoend.service_pids(system)
    for fraction in fractions:
        print(f"bench: {label}, open loop at {fraction:.0%} of {capacity:.0f}/s", flush=True)
        spies = {}
        if fraction == 1.0 and label == "1 worker":
            spies = {
                n: profile.start(pids[n], seconds, work / f"{n}.raw") for n in ("ingest", "tally")
            }
        before, started = cpu.read(), time.monotonic()
        result = await endtoend.level(
            system, ["--rate", f"{capacity * fraction:.0f}"], seconds, work
        )
        result["cpu"] = used_since(before, started)
        for name, spy in spies.items():
            if spy is not None:
                spy.wait(30)
                result[f"profile_{name}"] = profile.top(work / f"{name}.raw")
        result["fraction"] = fraction
        show(f"{label} {fraction:.0%}", {k: v for k, v in result.items() if k != "report"})
        found.append(result)
    return found


def used_since(before: cpu.Reading, started: float) -> dict[str, Any]:
    """Every part's CPU seconds since `before`, and the wall seconds they were spent in."""
    return {"seconds": cpu.seconds_by_part(before, cpu.read()), "wall": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    parser.add_argument("--quick", action="store_true", help="smaller pre-filled topics")
    args = parser.parse_args()
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "seconds_per_run": args.seconds}
    with tempfile.TemporaryDirectory(prefix="votestream-bench-") as tmp:
        work = Path(tmp)
        results["parts"] = asyncio.run(part_one(work, args.seconds, args.quick))
        results["votestream"] = asyncio.run(part_two(work, args.seconds))
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    results["simulation"] = simulate(results)
    (HERE / "results.json").write_text(json.dumps(results, indent=2, default=str))
    write_results(results, HERE / "RESULTS.md")
    print((HERE / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()
