"""What every ingest route needs, handed to create_app and reached as request.app[DEPS]."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry

from services.ingest.ballots import BallotDesk
from services.ingest.metrics import IngestMetrics
from services.ingest.voters import TokenVerifier
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.readiness import Readiness
from services.runtime.settings import Settings


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
    # whether requests are taken; built by hand from opened clients (tests): from the start
    readiness: Readiness = field(default_factory=Readiness.opened)

    @property
    def identity_key(self) -> bytes:
        return self.settings.identity_key_bytes


DEPS = web.AppKey("deps", IngestDeps)
"""The key under which the app holds its IngestDeps (typed, unlike a string key)."""
