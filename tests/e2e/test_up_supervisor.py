"""`votestream up` supervises: under `votestream loadgen` web traffic, each service (ingest,
tally, publish) is killed with SIGKILL in turn; `up` restarts it and keeps the rest running,
and every ballot answered 202 is counted exactly once: the loadgen's ids against the ballots
table, and the ballots table against the published totals.

`up` runs its embedded broker (memory: the one that must not be stopped before the drain)
and uses a fresh database on the session's PostgreSQL (no initdb: the CI budget). A kill of
the broker itself is not tested for "nothing lost": with memory storage it loses what it held,
and on s3rver storage it can leave a partition it cannot read back (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from services.runtime.supervisor import SERVICES
from tests.e2e.up_run import DEMO_ID, UpRun, cast, up_env
from tests.support.stack import Stack
from tests.support.system import REPO
from tests.support.waiting import eventually

RATE, SECONDS = 150, 24

pytestmark = pytest.mark.timeout(300)


def current_pid(run: UpRun, name: str) -> int | None:
    """The pid of `up`'s child running the service, if one runs."""
    for child in psutil.Process(run.proc.pid).children():
        with contextlib.suppress(psutil.Error):
            named = f"services.{name}" in child.cmdline() or child.name().startswith(name)
            if named and child.status() != psutil.STATUS_ZOMBIE:
                return int(child.pid)
    return None


def kill_and_see_it_back(run: UpRun, name: str) -> None:
    victim = current_pid(run, name)
    assert victim is not None, run.tail()
    os.kill(victim, signal.SIGKILL)
    eventually(lambda: current_pid(run, name) not in (None, victim), 30, f"{name} restarted")
    if name in SERVICES:
        eventually(lambda: answers_ready(run, name), 60, f"{name} ready again")
    else:
        assert run.wait_for_line("broker restarted", 60), run.tail()
    assert run.proc.poll() is None, run.tail()


def answers_ready(run: UpRun, name: str) -> bool:
    port = run.env[f"VOTESTREAM_{name.upper()}_PORT"]
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def counted_ids(dsn: str) -> list[uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT ballot_id FROM ballots WHERE campaign_id = $1 AND status = 'counted'", DEMO_ID
        )
        return [row["ballot_id"] for row in rows]
    finally:
        await conn.close()


def more_counted(dsn: str, more: int) -> None:
    floor = len(asyncio.run(counted_ids(dsn))) + more
    eventually(lambda: len(asyncio.run(counted_ids(dsn))) >= floor, 60, f"{more} more counted")


def published_count(run: UpRun) -> int | None:
    port = run.env["VOTESTREAM_PUBLISH_PORT"]
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/v1/campaigns/{DEMO_ID}/results", timeout=2)
    except httpx.HTTPError:
        return None
    return int(response.json()["ballots_counted"]) if response.status_code == 200 else None


def test_each_service_killed_under_load_is_restarted_and_every_202_is_counted_once(
    stack: Stack, tmp_path: Path
) -> None:
    run = kills_under_load(stack, tmp_path, ("ingest", "tally", "publish"))
    for name in ("ingest", "tally", "publish"):
        assert run.has(f"{name} exited (killed by SIGKILL)"), run.tail()


def kills_under_load(
    stack: Stack,
    tmp_path: Path,
    victims: tuple[str, ...],
) -> UpRun:
    """`up` under loadgen traffic, each victim killed in turn once ballots flow; then every
    ballot answered 202 must be counted once, and the published total equal the table."""
    dsn = asyncio.run(stack.new_database())
    run = UpRun.start(up_env(tmp_path / "up", dsn=dsn))
    loadgen = None
    try:
        assert run.wait_for_line("votestream ready", 120), run.tail()
        ids_file, summary_file = tmp_path / "ids.json", tmp_path / "summary.json"
        argv = [sys.executable, "-m", "services", "loadgen", "--campaign", DEMO_ID]
        argv += ["--rate", str(RATE), "--duration", f"{SECONDS}s", "--channels", "web"]
        argv += ["--repeat-rate", "0", "--invalid-rate", "0", "--quiet", "--settle-timeout", "20"]
        argv += ["--json", str(summary_file), "--ballot-ids", str(ids_file)]
        loadgen = subprocess.Popen(
            argv, env=run.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started = time.monotonic()
        for name in victims:
            # each kill once ballots flow: 100 more counted since the last one
            more_counted(dsn, 100)
            kill_and_see_it_back(run, name)
            print(f"{name} killed and back at {time.monotonic() - started:.1f} s")
        out, _ = loadgen.communicate(timeout=SECONDS + 120)
        print(out)
        assert "Traceback" not in out, out
        summary = json.loads(summary_file.read_text())
        ids = json.loads(ids_file.read_text())
        accepted = {uuid.UUID(i) for i in ids["accepted"]}
        uncertain = {uuid.UUID(i) for i in ids["uncertain"]}
        assert len(accepted) > RATE * SECONDS / 3, summary
        if "ingest" in victims:
            assert summary["errors"], "the ingest was killed under load: no error seen?"

        def all_counted() -> list[uuid.UUID] | None:
            found = asyncio.run(counted_ids(dsn))
            return found if accepted <= set(found) else None

        counted = eventually(all_counted, 60, "every ballot answered 202 counted") or []
        assert len(counted) == len(set(counted))  # once each
        assert set(counted) <= accepted | uncertain  # nothing counted that nobody sent
        eventually(lambda: published_count(run) == len(counted), 30, "published = ballots table")
        print(
            f"{len(accepted)} answered 202, {len(uncertain)} never answered,"
            f" {len(counted)} counted; loadgen errors {summary['errors']}"
        )
    finally:
        if loadgen is not None and loadgen.poll() is None:
            loadgen.kill()
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGTERM)
    assert run.wait(60) == 0, run.tail()
    assert run.has("tally drained: yes"), run.tail()
    assert not run.leftovers(), run.tail()
    return run


def test_a_tally_that_cannot_drain_keeps_the_memory_broker_and_its_ballots_until_it_can(
    stack: Stack, tmp_path: Path
) -> None:
    """The tally frozen (SIGSTOP) with ballots answered 202 still in the in-memory broker: on
    SIGTERM `up` must not stop the broker. It warns, keeps everything running, and once the
    tally runs again (SIGCONT) it drains, counts them and exits cleanly."""
    dsn = asyncio.run(stack.new_database())
    run = UpRun.start(up_env(tmp_path / "up", dsn=dsn) | {"VOTESTREAM_DRAIN_TIMEOUT": "3"})
    tally = None
    try:
        assert run.wait_for_line("votestream ready", 120), run.tail()
        tally = current_pid(run, "tally")
        assert tally is not None
        os.kill(tally, signal.SIGSTOP)
        held = cast(run, 20)
        run.proc.send_signal(signal.SIGTERM)
        run.proc.send_signal(signal.SIGINT)  # before the warning, more signals change nothing
        assert run.wait_for_line("WARNING: tally drained: NO", 60), run.tail()
        with pytest.raises(subprocess.TimeoutExpired):
            run.proc.wait(3)  # it holds: no exit while the ballots are only in the broker
        assert current_pid(run, "tansu") is not None, run.tail()
        assert asyncio.run(counted_ids(dsn)) == []
        os.kill(tally, signal.SIGCONT)
        assert run.wait(120) == 0, run.tail()
    finally:
        if tally is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(tally, signal.SIGCONT)
        if run.proc.poll() is None:
            run.kill()
    assert run.has("tally drained: yes"), run.tail()
    assert set(asyncio.run(counted_ids(dsn))) == set(held)
    assert not run.leftovers(), run.tail()


def test_a_signal_after_the_cannot_drain_warning_stops_anyway_loudly(
    stack: Stack, tmp_path: Path
) -> None:
    """The same frozen tally; a signal after the warning stops everything, says the ballots
    not counted are lost and exits 1, leaving no process behind (the frozen one included)."""
    dsn = asyncio.run(stack.new_database())
    run = UpRun.start(up_env(tmp_path / "up", dsn=dsn) | {"VOTESTREAM_DRAIN_TIMEOUT": "3"})
    try:
        assert run.wait_for_line("votestream ready", 120), run.tail()
        tally = current_pid(run, "tally")
        assert tally is not None
        os.kill(tally, signal.SIGSTOP)
        cast(run, 5)
        run.proc.send_signal(signal.SIGTERM)
        assert run.wait_for_line("WARNING: tally drained: NO", 60), run.tail()
        run.proc.send_signal(signal.SIGHUP)
        assert run.wait(60) == 1, run.tail()
    finally:
        if run.proc.poll() is None:
            run.kill()
    assert run.has("stopped anyway on request"), run.tail()
    assert run.has("LOST"), run.tail()
    assert not run.leftovers(), run.tail()
