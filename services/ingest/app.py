"""The ingest HTTP app: every channel, the admin API and the public reads, on one port."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry

from services.ingest import admin, defenses_admin, pages, public, velocity
from services.ingest.ballots import BallotDesk
from services.ingest.channels import web as web_channel
from services.ingest.kiosk import routes as kiosk_routes
from services.ingest.metrics import IngestMetrics
from services.ingest.voters import TokenVerifier
from services.ingest.wechat import routes as wechat_routes
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.correlation import correlate
from services.runtime.health import add_health_routes
from services.runtime.http import errors_as_json
from services.runtime.settings import Settings

MAX_BODY = 1024 * 1024  # kiosk batches are the largest bodies


@dataclass
class IngestDeps:
    settings: Settings
    pool: asyncpg.Pool
    campaign_store: CampaignStore
    campaigns: CampaignCache
    desk: BallotDesk
    tokens: TokenVerifier
    metrics: IngestMetrics
    registry: CollectorRegistry

    @property
    def identity_key(self) -> bytes:
        return self.settings.identity_key_bytes


def create_app(deps: IngestDeps) -> web.Application:
    app = web.Application(middlewares=[correlate, errors_as_json], client_max_size=MAX_BODY)
    app["deps"] = deps
    # velocity first: it puts the campaign's velocity limits in front of deps.desk (issue 10)
    channels = (velocity, web_channel, kiosk_routes, wechat_routes)
    for module in (*channels, admin, defenses_admin, public, pages):
        module.register(app)

    async def ready() -> bool:
        try:
            await deps.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError):
            return False
        return True

    add_health_routes(app, deps.registry, ready)
    return app
