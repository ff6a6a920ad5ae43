"""Serving an aiohttp app from the first moment, starting behind it, draining on stop.

The port answers `/healthz` at once, while `start` reaches the service's dependencies (it
may retry for as long as they are away). SIGTERM/SIGINT then: `/readyz` and new requests
get 503, `on_stop` runs (publish hands over its lock there), the requests in flight finish
(ingest's wait for Kafka's acks) for up to `drain_seconds`, and the server closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from services.runtime.health import add_health_routes
from services.runtime.readiness import Readiness

log = logging.getLogger(__name__)
Step = Callable[[], Coroutine[Any, Any, None]]
DRAIN_SECONDS = 20.0  # within Kubernetes' default 30 s grace period


async def _nothing() -> None:
    return None


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    *,
    readiness: Readiness | None = None,
    start: Step = _nothing,
    on_stop: Step = _nothing,
    drain_seconds: float = DRAIN_SECONDS,
) -> None:
    """Serves until a stop signal; exceptions from `start` end the service (after cleanup)."""
    readiness = readiness or Readiness.opened()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    await site.start()
    log.info("serving", extra={"host": host, "port": port})
    try:
        if await _started(start, stop):
            readiness.started = True
            log.info("ready", extra={"port": port})
            await stop.wait()
    finally:
        log.info("stopping", extra={"port": port, "in_flight": readiness.in_flight})
        readiness.stopping = True
        await on_stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_seconds):
                await readiness.idle()
        await runner.cleanup()


async def serve_probes(
    registry: CollectorRegistry, readiness: Readiness, host: str, port: int
) -> web.AppRunner:
    """Only /healthz, /readyz and /metrics, for a process whose work is not HTTP (the tally);
    the caller cleans the runner up when it stops."""
    app = web.Application()
    add_health_routes(app, registry, readiness)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    log.info("serving probes", extra={"host": host, "port": port})
    return runner


async def start_unless_stopped(start: Step) -> bool:
    """Runs `start` (which may wait long for dependencies); False if SIGTERM/SIGINT came first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await _started(start, stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _started(start: Step, stop: asyncio.Event) -> bool:
    """Runs `start` until it returns (True) or a stop signal comes first (False)."""
    starting = asyncio.create_task(start(), name="start")
    stopped = asyncio.create_task(stop.wait(), name="stop-signal")
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        stopped.cancel()
        starting.result()  # raises what stopped the start (e.g. a schema too new)
        return True
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return False
