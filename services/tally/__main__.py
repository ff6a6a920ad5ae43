"""Run a tally worker: `votestream tally` (or `python -m services.tally`).

Any number of workers may run: they share the partitions of `ballots` through the consumer
group `VOTESTREAM_TALLY_GROUP`. Health and metrics on VOTESTREAM_TALLY_PORT.
"""

from __future__ import annotations

import os
from typing import Any

import faust
from aiohttp import web

from services.runtime.health import add_health_routes
from services.runtime.logs import setup_logging
from services.runtime.metrics import service_registry
from services.runtime.settings import Settings
from services.tally.app import Tally, create_faust_app, register_agent
from services.tally.lag import register_lag_reporter
from services.tally.metrics import TallyMetrics


def build(settings: Settings) -> tuple[faust.App, Tally]:
    registry = service_registry()
    app = create_faust_app(settings)
    tally = Tally(settings, TallyMetrics.create(registry))
    register_agent(app, tally)
    register_lag_reporter(app, settings, tally.metrics.lag)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        tally.assigned.set()

    @app.task  # type: ignore[untyped-decorator]
    async def health_server() -> None:
        await tally.open()

        async def ready() -> bool:
            return tally.assigned.is_set()

        http = web.Application()
        add_health_routes(http, registry, ready)
        runner = web.AppRunner(http, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.tally_port, reuse_address=True).start()

    return app, tally


def main() -> None:
    setup_logging("tally")
    settings = Settings.from_env(os.environ)
    app, _ = build(settings)
    # Keep the JSON logs setup_logging installed, and no terminal spinner in the log file.
    worker = faust.Worker(
        app, loglevel="warn", quiet=True, redirect_stdouts=False, override_logging=False
    )
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
