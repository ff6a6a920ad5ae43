"""The ingest app built by create_app with fakes for the broker and the database (web tests)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import yaml
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign, parse_campaign
from services.domain.errors import UnavailableError
from services.ingest.app import create_app
from services.ingest.ballots import BallotDesk
from services.ingest.deps import IngestDeps
from services.ingest.intake import RecentBallots
from services.ingest.metrics import IngestMetrics
from services.ingest.voters import TokenVerifier
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.settings import Settings

DEMO = Path(__file__).resolve().parents[2] / "campaigns" / "zibo-2021-b2.yaml"
SECRET = "unit-test-web-jwt-secret-of-32-bytes-or-more"
IDENTITY_KEY = "unit-test-identity-key"
SITE_AUDIENCE = "city-vote"  # what the city's external login puts in `aud` and `iss`
SITE_ISSUER = "https://login.city.example"
PUBLIC_BASE_URL = "https://vote.city.example"


class CountingSink:
    """The broker, remembering every ballot it took."""

    def __init__(self) -> None:
        self.ballots: list[Ballot] = []

    async def submit(self, ballot: Ballot) -> None:
        self.ballots.append(ballot)


class FailingSink:
    """A broker that cannot take anything."""

    async def submit(self, ballot: Ballot) -> None:
        raise UnavailableError("the ballot box is busy, try again", retry_after=2)


class EmptyPool:
    """A database where the tally has recorded nothing yet."""

    async def fetchrow(self, *_: Any) -> None:
        return None

    async def fetch(self, *_: Any) -> list[Any]:
        return []

    async def fetchval(self, *_: Any) -> int:
        return 1

    def get_max_size(self) -> int:
        return 10


class FixedStore:
    def __init__(self, campaigns: list[Campaign]) -> None:
        self.campaigns = campaigns

    async def changed_since(
        self, versions: Mapping[str, datetime]
    ) -> tuple[dict[str, datetime], list[Campaign]]:
        """Every campaign is new on the first read and unchanged after it."""
        stamp = datetime.min.replace(tzinfo=UTC)
        fresh = [c for c in self.campaigns if c.id not in versions]
        return {c.id: stamp for c in self.campaigns}, fresh


def campaign(
    cid: str = "demo", *, opens: timedelta = timedelta(hours=-1), **extra: Any
) -> Campaign:
    data = yaml.safe_load(DEMO.read_text("utf-8"))
    now = datetime.now(UTC).replace(microsecond=0)
    data.update(id=cid, opens_at=(now + opens).isoformat())
    data["closes_at"] = (now + opens + timedelta(days=1)).isoformat()
    data.update(extra)
    return parse_campaign(data)


def voter_token(
    sub: str = "voter-1", *, ttl: int = 600, key: Any = SECRET, alg: str = "HS256", **claims: Any
) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + ttl, **claims}, key, algorithm=alg)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def web_client(
    tmp_path: Path,
    *,
    sink: Any = None,
    campaigns: list[Campaign] | None = None,
    public_key: str | None = None,
    secret: str = SECRET,
    pool: Any = None,
    **settings: Any,
) -> AsyncIterator[TestClient[Any, Any]]:
    """A TestClient on create_app: campaigns from memory, ballots into `sink`."""
    settings.setdefault("public_base_url", PUBLIC_BASE_URL)
    if public_key:  # an external login's tokens name this service and their login
        settings.setdefault("web_jwt_audience", SITE_AUDIENCE)
        settings.setdefault("web_jwt_issuer", SITE_ISSUER)
    config = Settings(
        data_dir=tmp_path,
        identity_key=IDENTITY_KEY,
        admin_token="unit-admin",
        web_jwt_secret=secret,
        web_jwt_public_key=public_key,
        **settings,
    )
    pool = pool or EmptyPool()
    cache = CampaignCache(FixedStore(campaigns or [campaign()]), refresh=60)  # type: ignore[arg-type]
    await cache.load()
    registry = CollectorRegistry()
    deps = IngestDeps(
        settings=config,
        pool=pool,
        campaign_store=CampaignStore(pool),
        campaigns=cache,
        desk=BallotDesk(sink or CountingSink(), pool, RecentBallots()),
        tokens=TokenVerifier.from_settings(config),
        metrics=IngestMetrics.create(registry),
        registry=registry,
    )
    app = create_app(deps)
    async with TestClient(TestServer(app)) as client:
        yield client
