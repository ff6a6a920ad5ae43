"""The publish HTTP app: results API, publication page, health."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from services.publish import api
from services.publish.metrics import PublishMetrics
from services.publish.page import render_campaign_page
from services.publish.store import SnapshotStore
from services.publish.stream import SnapshotHub, stream
from services.runtime.campaigns import CampaignCache
from services.runtime.correlation import correlate
from services.runtime.health import add_health_routes
from services.runtime.http import errors_as_json
from services.runtime.settings import Settings


@dataclass
class PublishDeps:
    settings: Settings
    pool: asyncpg.Pool
    store: SnapshotStore
    campaigns: CampaignCache
    signing_key: Ed25519PrivateKey
    metrics: PublishMetrics
    registry: CollectorRegistry
    hub: SnapshotHub


def create_app(deps: PublishDeps) -> web.Application:
    app = web.Application(middlewares=[correlate, errors_as_json])
    app["deps"] = deps
    api.register(app)
    app.router.add_get("/v1/campaigns/{campaign_id}/stream", stream)
    app.router.add_get("/campaigns/{campaign_id}", publication_page)

    async def end_streams(_: web.Application) -> None:
        deps.hub.close()

    app.on_shutdown.append(end_streams)

    async def ready() -> bool:
        try:
            await deps.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError):
            return False
        return True

    add_health_routes(app, deps.registry, ready)
    return app


async def publication_page(request: web.Request) -> web.Response:
    request.app["deps"].campaigns.require(request.match_info["campaign_id"])
    return web.Response(
        body=render_campaign_page(False),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
