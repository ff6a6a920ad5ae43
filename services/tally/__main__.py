"""Run a tally worker: `votestream tally` (or `python -m services.tally`).

Any number of workers may run: they share the partitions of `ballots` through the consumer
group `VOTESTREAM_TALLY_GROUP`. Probes and metrics on VOTESTREAM_HOST:VOTESTREAM_TALLY_PORT
from the first moment; /readyz once Postgres (with the expected schema) and Kafka answer and
the worker has its partitions. SIGTERM: the batch being stored is committed, then it stops.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import faust
from aiohttp import web
from prometheus_client import CollectorRegistry

from services.runtime.db import SchemaTooNewError
from services.runtime.heap import settle_heap
from services.runtime.kafka import KafkaSecurity
from services.runtime.logs import setup_logging
from services.runtime.metrics import service_registry
from services.runtime.readiness import Readiness
from services.runtime.service import serve_probes, start_unless_stopped
from services.runtime.settings import Settings
from services.runtime.startup import wait_for_kafka
from services.tally.app import Tally, create_faust_app, register_agent
from services.tally.deps import TallyDeps
from services.tally.lag import register_lag_reporter
from services.tally.metrics import TallyMetrics


def build(
    settings: Settings, deps: TallyDeps, registry: CollectorRegistry, readiness: Readiness
) -> faust.App:
    # Faust makes only the last level of its data dir; the volume may be empty.
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = create_faust_app(settings)
    tally = Tally(settings, TallyMetrics.create(registry), deps)
    register_agent(app, tally)
    register_lag_reporter(app, settings, tally.metrics.lag)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        tally.assigned.set()

    async def has_partitions() -> bool:
        return tally.assigned.is_set()

    readiness.check = has_partitions
    return app


class TallyWorker(faust.Worker):
    """A Faust worker that turns unready as it stops and closes the tally's dependencies
    and probes only after its agents have stopped (the last batch needs them to commit)."""

    def __init__(
        self,
        app: faust.App,
        readiness: Readiness,
        deps: TallyDeps,
        probes: web.AppRunner,
        **kw: Any,
    ) -> None:
        super().__init__(app, **kw)
        self.readiness, self.deps, self.probes = readiness, deps, probes

    async def on_stop(self) -> None:
        self.readiness.stopping = True
        await super().on_stop()

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        await self.deps.close()
        await self.probes.cleanup()


def main() -> None:
    setup_logging("tally")
    settings = Settings.from_env(os.environ)
    security = KafkaSecurity.from_settings(settings)
    registry = service_registry()
    deps = TallyDeps(settings)
    readiness = Readiness()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # the Faust worker below runs on this loop too
    probes = loop.run_until_complete(
        serve_probes(registry, readiness, settings.host, settings.tally_port)
    )

    async def start() -> None:
        await deps.open()
        await wait_for_kafka(settings.bootstrap, **security.aiokafka_config())

    try:
        started = loop.run_until_complete(start_unless_stopped(start))
    except SchemaTooNewError as exc:
        sys.exit(f"tally: {exc}")
    if not started:  # stopped while waiting for Postgres or Kafka
        loop.run_until_complete(deps.close())
        loop.run_until_complete(probes.cleanup())
        return
    readiness.started = True
    app = build(settings, deps, registry, readiness)
    settle_heap()  # the worker is built: what exists now lives as long as the process
    # Keep the JSON logs setup_logging installed, and no terminal spinner in the log file.
    worker = TallyWorker(
        app,
        readiness,
        deps,
        probes,
        loop=loop,
        loglevel="warn",
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
