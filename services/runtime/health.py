"""/healthz, /readyz and /metrics, the same on every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.runtime.db import DB_ERRORS

ReadyCheck = Callable[[], Awaitable[bool]]
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # the routes added below


def postgres_answers(pool: asyncpg.Pool) -> ReadyCheck:
    """A readiness check: the service is ready while its database answers."""

    async def ready() -> bool:
        try:
            await pool.fetchval("SELECT 1")
        except DB_ERRORS:
            return False
        return True

    return ready


def add_health_routes(app: web.Application, registry: CollectorRegistry, ready: ReadyCheck) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ok = await ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
