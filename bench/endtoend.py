"""votestream end to end: `votestream up` on free ports, driven by `votestream loadgen` (a
separate process), every run checked against the published totals, and received->counted
read from the ballots table (counted_at - received_at) of that run's campaign."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from services.loadgen.totals import Results
from services.runtime.processes import free_port
from tests.support.system import System
from tests.support.waiting import eventually, eventually_async

# The per-IP bucket would throttle one loopback client long before the capacity; these are
# the largest values the settings accept.
SYSTEM_ENV = {"VOTESTREAM_RATE_IP_PER_SECOND": "3600", "VOTESTREAM_RATE_IP_BURST": "100000"}
LAG_PARTITION = re.compile(r'^votestream_tally_consumer_lag\{partition="(\d+)"', re.M)
PURE = ["--duplicate-rate", "0", "--repeat-rate", "0", "--invalid-rate", "0"]


def loadgen(system: System, load: list[str], seconds: float, work: Path) -> dict[str, Any]:
    campaign = system.new_campaign()
    out = work / f"loadgen-{uuid.uuid4().hex[:6]}.json"
    argv = [sys.executable, "-m", "services", "loadgen", "--campaign", campaign["id"], *load]
    argv += ["--duration", f"{seconds}", "--quiet", "--json", str(out), "--settle-timeout", "120"]
    done = subprocess.run(argv, env=system.env, capture_output=True, text=True, timeout=600)
    summary: dict[str, Any] = json.loads(out.read_text())
    summary["report"] = done.stdout
    return summary


async def counted_latency(system: System, campaign_id: str) -> dict[str, float]:
    conn = await asyncpg.connect(
        f"postgresql://votestream@127.0.0.1:{system.ports['PG']}/votestream"
    )
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, min(received_at) AS first_in, max(received_at) AS last_in,"
            " max(counted_at) AS last_counted,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY counted_at - received_at) AS p50,"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY counted_at - received_at) AS p99"
            " FROM ballots WHERE campaign_id = $1 AND status = 'counted'",
            campaign_id,
        )
    finally:
        await conn.close()
    span = (row["last_counted"] - row["first_in"]).total_seconds()
    return {
        "counted": row["n"],
        "counted_per_s": row["n"] / span if span > 0 else 0.0,
        "e2e_p50_ms": row["p50"].total_seconds() * 1000,
        "e2e_p99_ms": row["p99"].total_seconds() * 1000,
        "drain_ms": (row["last_counted"] - row["last_in"]).total_seconds() * 1000,
    }


async def counted_after_wrk(system: System, campaign_id: str, accepted: int) -> dict[str, Any]:
    """End to end with wrk as the client: once the results API publishes every ballot wrk got
    a 202 for (each from a voter of its own), counted/s and received->counted as for loadgen."""

    async with aiohttp.ClientSession() as http:
        results = Results(http, system.publish, campaign_id)

        async def all_published() -> bool:
            # at least: wrk leaves a request in flight on each connection, counted but unread
            return (await results.latest()).counted >= accepted

        await eventually_async(all_published, timeout=120, what=f"{accepted} published")
        found: dict[str, Any] = await counted_latency(system, campaign_id)
        found["published"] = (await results.latest()).counted
    found["accepted"] = accepted
    return found


async def level(system: System, load: list[str], seconds: float, work: Path) -> dict[str, Any]:
    summary = loadgen(system, load, seconds, work)
    summary.update(await counted_latency(system, summary["campaign"]))
    return summary


def second_tally(system: System, work: Path) -> subprocess.Popen[bytes]:
    """A second tally worker, returned once the two share the partitions of `ballots`: the
    two-worker rows measure two workers, not the rebalance that hands one its half."""
    every = owned_partitions(system.tally)
    port = free_port()
    env = {**system.env, "VOTESTREAM_TALLY_PORT": str(port)}
    log = open(work / "tally-2.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.tally"], env=env, stdout=log, stderr=subprocess.STDOUT
    )

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    eventually(ready, timeout=90, what="second tally worker ready")

    def shared() -> bool:
        first, second = owned_partitions(system.tally), owned_partitions(f"http://127.0.0.1:{port}")
        return bool(first and second) and not first & second and first | second == every

    eventually(shared, timeout=90, what="the two tally workers sharing the partitions")
    return proc


def owned_partitions(tally: str) -> set[int]:
    """The partitions a tally worker shows its consumer lag for: those it was assigned."""
    with urllib.request.urlopen(f"{tally}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {int(p) for p in LAG_PARTITION.findall(text)}


def service_pids(system: System) -> dict[str, int]:
    """The supervisor's children by service name (for the profiler)."""
    pid = system.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = {}
    for child in children:
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        for name in ("ingest", "tally", "publish"):
            if f"services.{name}" in cmdline:
                found[name] = int(child)
    return found
