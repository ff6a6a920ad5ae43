"""Faust's own delivery ceiling: the tally's Faust app and delivery (a poll at a time, acked
whole: services/tally/transport.py) with no work at all, on the same pre-filled topic. What
the Faust tally could reach if counting cost nothing.

    python -m bench.faust_ceiling --bootstrap B --count N  ->  one JSON line on stdout
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import faust
import orjson

from services.runtime.kafka import BALLOTS
from services.runtime.settings import Settings
from services.tally.app import create_faust_app
from services.tally.transport import Poll


def build(bootstrap: str, count: int) -> faust.App:
    settings = Settings(
        kafka_bootstrap=bootstrap,
        tally_group=f"bench-ceiling-{uuid.uuid4().hex[:6]}",
        data_dir=Path(tempfile.mkdtemp(prefix="votestream-ceiling-")),
    )
    app = create_faust_app(settings)
    topic = app.topic(BALLOTS, key_serializer="raw", value_serializer="raw")
    seen = {"events": 0, "after_first": 0}
    started: list[float] = []

    async def deliver_only(stream: faust.StreamT[Poll]) -> None:
        async for events in stream:
            if not started:  # the rate counts from the first batch (after the group join)
                started.append(time.perf_counter())
            else:
                seen["after_first"] += len(events)
            seen["events"] += len(events)
            app.ack_poll(events)
            if seen["events"] >= count:
                rate = seen["after_first"] / (time.perf_counter() - started[0])
                sys.stdout.write(orjson.dumps({"rate": rate}).decode() + "\n")
                sys.stdout.flush()
                os._exit(0)  # a Faust worker has no "stop after N"; nothing to clean up

    app.agent(app.feed_polls(topic), name="deliver-only")(deliver_only)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    app = build(args.bootstrap, args.count)
    worker = faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
