"""The Faust tally alone on a pre-filled topic, against a plain aiokafka loop doing the same
Postgres work. Rates come from the database's own clock (counted_at of the first and last
batch), so neither process start nor the consumer-group join is counted."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench import profile
from bench.ballots import encoded, make_ballots
from bench.transport import produce
from services.domain.campaign import Campaign
from services.runtime.campaigns import CampaignStore
from services.runtime.kafka import BALLOTS, ensure_topics
from services.runtime.processes import free_port
from tests.support.stack import Stack

WAIT = 120.0
PROFILE_SECONDS = 4  # from the first stored batch: the counting, not the group join


async def prepared_database(stack: Stack, campaign: Campaign) -> str:
    dsn = await stack.new_database()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await CampaignStore(pool).put(campaign)
    finally:
        await pool.close()
    return dsn


async def prefill(stack: Stack, campaign: Campaign, count: int) -> None:
    await ensure_topics(stack.bootstrap, 12)
    await produce(stack.bootstrap, BALLOTS, encoded(make_ballots(campaign, count)))


async def counted_rate(
    dsn: str, count: int, proc: subprocess.Popen[bytes], on_first: Callable[[], None]
) -> dict[str, float]:
    """Waits until `count` ballots are stored; the rate over the batches after the first.
    `on_first` runs once the first batch is stored (the profiler starts then)."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + WAIT
        started = False
        while (stored := await conn.fetchval("SELECT count(*) FROM ballots")) < count:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"tally did not count {count} ballots (exit {proc.poll()})")
            if stored and not started:
                started = True
                on_first()
            await asyncio.sleep(0.1)
        first, last = await conn.fetchrow("SELECT min(counted_at), max(counted_at) FROM ballots")
        in_first = await conn.fetchval("SELECT count(*) FROM ballots WHERE counted_at = $1", first)
        span = (last - first).total_seconds()
        return {"rate": (count - in_first) / span if span > 0 else 0.0, "seconds": span}
    finally:
        await conn.close()


def faust_worker(stack: Stack, dsn: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOTESTREAM_KAFKA_BOOTSTRAP": stack.bootstrap,
        "VOTESTREAM_DATABASE_URL": dsn,
        "VOTESTREAM_TALLY_GROUP": f"bench-faust-{uuid.uuid4().hex[:6]}",
        "VOTESTREAM_TALLY_PORT": str(free_port()),
        "VOTESTREAM_DATA_DIR": str(data_dir),
    }
    log = open(data_dir / "faust-tally.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "services.tally"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def plain_worker(stack: Stack, dsn: str, count: int) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "bench.plain_tally",
        "--bootstrap",
        stack.bootstrap,
        "--dsn",
        dsn,
        "--group",
        f"bench-plain-{uuid.uuid4().hex[:6]}",
        "--count",
        str(count),
    ]
    return subprocess.Popen(argv)


async def compare(stack: Stack, campaign: Campaign, count: int, work: Path) -> dict[str, object]:
    await prefill(stack, campaign, count)
    out: dict[str, object] = {"ballots": count}
    for name in ("faust", "plain"):
        dsn = await prepared_database(stack, campaign)
        work.mkdir(parents=True, exist_ok=True)
        proc = (
            faust_worker(stack, dsn, work) if name == "faust" else plain_worker(stack, dsn, count)
        )
        spies: list[subprocess.Popen[bytes] | None] = []

        def spy(
            proc: subprocess.Popen[bytes] = proc, name: str = name, spies: list[Any] = spies
        ) -> None:
            spies.append(profile.start(proc.pid, PROFILE_SECONDS, work / f"{name}.raw"))

        try:
            out[name] = await counted_rate(dsn, count, proc, spy)
        finally:
            for running in filter(None, spies):
                running.wait(PROFILE_SECONDS + 30)
            out[f"{name}_profile"] = profile.top(work / f"{name}.raw")
            proc.terminate()
            proc.wait(30)
    out["faust_ceiling"] = faust_ceiling(stack, count)
    return out


def faust_ceiling(stack: Stack, count: int) -> dict[str, float]:
    """The same Faust app and batching with no work (bench/faust_ceiling.py)."""
    argv = [sys.executable, "-m", "bench.faust_ceiling", "--bootstrap", stack.bootstrap]
    done = subprocess.run(
        [*argv, "--count", str(count)], capture_output=True, text=True, timeout=WAIT
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"faust ceiling run failed: {done.stderr[-500:]}")
    rate: dict[str, float] = json.loads(lines[-1])
    return rate
