"""Three tally workers share the partitions; one stops and another joins mid-stream.

The group rebalances twice while ballots flow; the totals end exactly equal to the
independent count, as one worker would have made them, and the recount is clean.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.faults.checks import (
    all_stored,
    assert_exact,
    caught_up,
    more_stored,
    publish_and_recount,
)
from tests.faults.conftest import Rig
from tests.faults.stream import streaming

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_workers_leaving_and_joining_mid_stream_change_no_total(rig: Rig) -> None:
    started = time.monotonic()
    for name in ("w1", "w2", "w3"):
        rig.workers.start(name)
    async with streaming(rig.stream):
        for name in ("w1", "w2", "w3"):
            await asyncio.to_thread(rig.workers.wait_ready, name)
        await more_stored(rig, 500)
        rig.workers.kill("w2", signal.SIGTERM)  # a clean stop: it leaves the group
        rig.workers.start("w4")
        await caught_up(rig, "w4")
        await more_stored(rig, 500)
    await all_stored(rig.pool, rig.stream)
    counted = {
        name: rig.workers.metric(name, "votestream_tally_ballots_counted_total")
        for name in ("w1", "w3", "w4")
    }
    await assert_exact(rig.pool, rig.stream)
    print(await publish_and_recount(rig.pool, rig.stream.campaign, rig.dsn))
    print(
        f"{len(rig.stream.sent)} ballots ({rig.stream.records} records) in"
        f" {time.monotonic() - started:.0f}s; counted per live worker since it started:"
        f" {counted}"
    )
    assert all(counted.values()), f"a worker got no partition: {counted}"
