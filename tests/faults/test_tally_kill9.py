"""kill -9 a tally worker at random moments and mid-transaction during a steady stream;
then replay the whole topic with a new consumer group. Totals stay exact throughout.

Kill points per run: ROUNDS kills, alternating between (a) a random moment (once a random
number of further ballots is stored) and (b) while a worker holds a batch transaction open
in Postgres (seen in pg_stat_activity). After each kill the test measures how many records
were already in Postgres beyond the committed Kafka offsets, i.e. whether the kill fell
between the Postgres commit and the offset commit, so that Kafka delivers them again.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.faults.checks import (
    all_stored,
    assert_exact,
    caught_up,
    drained,
    in_transaction,
    more_stored,
    publish_and_recount,
    stored_beyond_commit,
)
from tests.faults.conftest import Rig
from tests.faults.stream import streaming
from tests.support.waiting import eventually_async

ROUNDS = 6
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def kill_at_random_moment(rig: Rig, name: str, rng: random.Random) -> str:
    await more_stored(rig, rng.randint(1, 400))
    await asyncio.sleep(rng.uniform(0, 1.5))  # the random moment itself, not a wait
    rig.workers.kill(name)
    return "random moment"


async def kill_mid_transaction(rig: Rig, name: str) -> str:
    since = rig.workers.started[name]
    await eventually_async(lambda: in_transaction(rig.pool, since), 90, "a transaction open")
    rig.workers.kill(name)
    return "batch transaction open"


async def test_kill9_at_random_moments_then_replay_from_offset_zero_change_no_total(
    rig: Rig,
) -> None:
    rng = random.Random()
    started = time.monotonic()
    rig.workers.start("w0")
    replayed_after_kill = []
    async with streaming(rig.stream):
        for n in range(ROUNDS):
            name = f"w{n}"
            await caught_up(rig, name)
            if n % 2:
                point = await kill_mid_transaction(rig, name)
            else:
                point = await kill_at_random_moment(rig, name, rng)
            beyond = await stored_beyond_commit(rig.bootstrap, rig.workers.group, rig.pool)
            replayed_after_kill.append(beyond)
            print(f"kill {n + 1}/{ROUNDS} at {point}: {beyond} records stored past the commit")
            rig.workers.start(f"w{n + 1}")
        await more_stored(rig, 200)  # the last worker counts too
    await all_stored(rig.pool, rig.stream)
    await assert_exact(rig.pool, rig.stream)
    print(await publish_and_recount(rig.pool, rig.stream.campaign, rig.dsn))
    assert any(replayed_after_kill), "no kill fell between the Postgres and the offset commit"
    print(
        f"{len(rig.stream.sent)} ballots ({rig.stream.records} records) in"
        f" {time.monotonic() - started:.0f}s, exact after {ROUNDS} kills"
    )

    # The whole tally again from offset 0: a new consumer group reads everything again.
    before = await rig.pool.fetch("SELECT * FROM tallies ORDER BY 1, 2, 3, 4, 5")
    rig.workers.stop_all()
    rig.workers.start("replay", group=f"{rig.workers.group}-reset")
    await drained(rig.producer, rig.pool)
    duplicates = rig.workers.metric("replay", "votestream_tally_duplicates_total")
    assert duplicates == rig.stream.records  # every ballot record seen again, none new
    assert await rig.pool.fetch("SELECT * FROM tallies ORDER BY 1, 2, 3, 4, 5") == before
    await assert_exact(rig.pool, rig.stream)
