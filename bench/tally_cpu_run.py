"""CPU seconds per ballot of a real tally process on a pre-filled topic (Faust worker or the
plain aiokafka loop), measured from the process's own CPU clock between its first stored
batch and its last: other work on the machine moves it far less than a wall-clock rate.

    python -m bench.tally_cpu_run [--ballots 20000] [--runs 2] [--which faust,plain]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

from bench.tally_alone import WAIT, faust_worker, plain_worker, prefill, prepared_database
from services.runtime.campaigns import read_campaign_file
from tests.support.stack import Stack, start_stack
from tests.support.system import DEMO

TICKS = os.sysconf("SC_CLK_TCK")
FLAME_SECONDS = 3


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def one(
    stack: Stack, which: str, count: int, work: Path, flame: Path | None = None
) -> dict[str, float]:
    campaign = read_campaign_file(DEMO, open_now=True)
    dsn = await prepared_database(stack, campaign)
    proc: subprocess.Popen[bytes] = (
        faust_worker(stack, dsn, work) if which == "faust" else plain_worker(stack, dsn, count)
    )
    conn = await asyncpg.connect(dsn)
    spy: subprocess.Popen[bytes] | None = None
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        first = -1
        cpu0 = 0.0
        while (stored := await conn.fetchval("SELECT count(*) FROM ballots")) < count:
            if loop.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{which} did not count {count} ballots")
            if stored and first < 0:
                first, cpu0 = stored, cpu_seconds(proc.pid)
                if flame is not None:
                    spy = flame_graph(proc.pid, flame / f"{which}.svg")
            await asyncio.sleep(0.02)
        cpu = cpu_seconds(proc.pid) - cpu0
        return {"us_per_ballot": round(1e6 * cpu / (count - first), 1), "ballots": count - first}
    finally:
        await conn.close()
        if spy is not None:
            spy.wait(30)
        proc.terminate()
        proc.wait(30)


def flame_graph(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy for FLAME_SECONDS, as an SVG flame graph (or collapsed stacks to a .txt)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [spy, "record", "--pid", str(pid), "--duration", str(FLAME_SECONDS)]
    kind = "raw" if out.suffix == ".txt" else "flamegraph"  # raw: collapsed stacks
    argv += ["--rate", "200", "--format", kind, "--output", str(out), "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main_async(count: int, runs: int, which: list[str], flame: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp) / "stack")
        try:
            campaign = read_campaign_file(DEMO, open_now=True)
            await prefill(stack, campaign, count)
            for _ in range(runs):
                for name in which:
                    figures = await one(stack, name, count, Path(tmp), flame)
                    print(json.dumps({name: figures}), flush=True)
        finally:
            stack.postgres.stop()
            stack.broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ballots", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--which", default="faust,plain")
    parser.add_argument("--flame", type=Path, help="a folder for py-spy SVG flame graphs")
    args = parser.parse_args()
    asyncio.run(main_async(args.ballots, args.runs, args.which.split(","), args.flame))


if __name__ == "__main__":
    main()
