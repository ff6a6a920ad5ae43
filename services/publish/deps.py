"""What every publish route needs, handed to create_app and reached as request.app[DEPS]."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from services.publish.hub import SnapshotHub
from services.publish.metrics import PublishMetrics
from services.publish.store import SnapshotStore
from services.runtime.campaigns import CampaignCache
from services.runtime.readiness import Readiness
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
    # whether requests are taken; built by hand from opened clients (tests): from the start
    readiness: Readiness = field(default_factory=Readiness.opened)


DEPS = web.AppKey("deps", PublishDeps)
"""The key under which the app holds its PublishDeps (typed, unlike a string key)."""
