"""`votestream up` stops on SIGINT, SIGTERM and SIGHUP at any moment: 20 rounds, each with one
to three signals (mixed kinds, in quick succession) at a random moment, during start-up or
once ready (some with ballots just accepted). Every round must exit within its bound, with
the tally drained whenever the ingest had started (the ballots it answered 202 are in the
ballots table), and no process of the stack left: not a descendant, not a member of their
process groups (PostgreSQL's backends), not any process carrying the round's data dir.

Split of the rounds (CI budget about 90 s): the signal handling and the stop order are the
same code whatever the broker and database, but an embedded PostgreSQL costs an initdb and
a start (seconds each round). So 17 rounds point `up` at the session's PostgreSQL (a fresh
database per round) and at a fresh in-memory broker per round (Tansu starts in ~10 ms, and a
round of its own keeps the fixed topic `ballots` free of other rounds' records), so `up`
starts only the three services; 3 rounds run everything embedded, to prove the embedded
broker and PostgreSQL (and PostgreSQL's own child processes) are stopped too. Rounds run in
two lanes at once, since a round spends most of its time waiting. Measured on 2 cores shared
with other test runs (load average ~9-10): 276 s in one lane, 119 s in two.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from services.runtime.embedded import EmbeddedBroker
from services.runtime.processes import free_port
from tests.e2e.up_run import UpRun, cast, up_env
from tests.support.stack import Stack
from tests.support.waiting import eventually

ROUNDS = 20
LANES = 2  # rounds two at a time: a round mostly waits (services starting, group join, drain)
EMBEDDED_ROUNDS = frozenset({0, 9, 18})
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_BOUND = 45.0  # seconds from the first signal: stop ingest, drain, stop the rest
# when the signals come; "start-up" is a random point within STARTUP_SPAN seconds after `up`
# has its handlers: broker, database, migrations, the services spawned and getting ready
MOMENTS = ("interpreter start", "start-up", "start-up", "start-up", "ready", "ready with ballots")
STARTUP_SPAN = 6.0

pytestmark = pytest.mark.timeout(600)


async def counted(dsn: str, ids: list[uuid.UUID]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM ballots WHERE ballot_id = ANY($1) AND status = 'counted'", ids
        )
        return found
    finally:
        await conn.close()


def test_up_stops_on_any_signal_at_any_moment_and_leaves_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    seed = int(os.environ.get("SIGNAL_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed}")
    started = time.monotonic()
    with ThreadPoolExecutor(LANES) as lanes:
        done = [lanes.submit(play_lane, stack, tmp_path, lane, seed) for lane in range(LANES)]
        for lane in done:
            lane.result()
    print(f"{ROUNDS} rounds in {time.monotonic() - started:.0f} s")


def play_lane(stack: Stack, tmp_path: Path, lane: int, seed: int) -> None:
    rng = random.Random(seed + lane)
    for n in range(lane, ROUNDS, LANES):
        embedded = n in EMBEDDED_ROUNDS
        broker, bootstrap, dsn = None, None, None
        if not embedded:
            broker = EmbeddedBroker(free_port(), tmp_path / f"tansu-{n}.log")
            broker.start()
            bootstrap, dsn = broker.bootstrap, asyncio.run(stack.new_database())
        run = UpRun.start(up_env(tmp_path / f"round-{n}", bootstrap, dsn))
        try:
            story = play_round(run, rng, dsn)
        finally:
            if run.proc.poll() is None:
                run.kill()
            if broker is not None:
                broker.stop()
        print(f"round {n:2d} {'embedded' if embedded else 'external'}: {story}")


def play_round(run: UpRun, rng: random.Random, dsn: str | None) -> str:
    accepted: list[uuid.UUID] = []
    moment = rng.choice(MOMENTS)
    if moment == "interpreter start":  # before `up` can have its handlers
        time.sleep(rng.uniform(0, 0.3))  # the random moment itself, not a wait
    elif moment == "start-up":
        assert run.wait_for_line("votestream starting", 60), run.tail()
        time.sleep(rng.uniform(0, STARTUP_SPAN))  # the random moment itself, not a wait
    else:
        assert run.wait_for_line("votestream ready", 90), run.tail()
        if moment == "ready with ballots" and dsn is not None:
            accepted = cast(run, rng.randint(1, 30))
        time.sleep(rng.uniform(0, 0.3))
    burst = [rng.choice(SIGNALS) for _ in range(rng.randint(1, 3))]
    first = time.monotonic()
    for sig in burst:
        run.proc.send_signal(sig)
        time.sleep(rng.uniform(0, 0.05))
    try:
        code = run.wait(EXIT_BOUND)
    except Exception as exc:
        raise AssertionError(f"no exit within {EXIT_BOUND} s of {burst}:\n{run.tail()}") from exc
    took = time.monotonic() - first
    names = "+".join(signal.Signals(s).name for s in burst)
    # before `up` has its handlers (the interpreter still importing), a signal's default
    # action (or a KeyboardInterrupt) ends it: fine as long as it had started nothing
    early = not run.has("votestream starting") and not run.seen
    assert code == 0 or early, (code, run.tail())
    if run.has("ingest started"):
        assert run.has("tally drained: yes"), run.tail()
    if accepted:
        assert dsn is not None
        assert asyncio.run(counted(dsn, accepted)) == len(accepted), run.tail()
    with contextlib.suppress(AssertionError):  # the assert below names what is left
        eventually(lambda: not run.leftovers(), 10, "no process of the stack left")
    left = run.leftovers()
    assert not left, f"left running: {left}\n{run.tail()}"
    return f"{moment}, {names}: exit {code} after {took:.1f} s, {len(accepted)} ballots counted"
