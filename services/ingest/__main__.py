"""Run the ingest service: `votestream ingest` (or `python -m services.ingest`).

Reads VOTESTREAM_* settings and serves on VOTESTREAM_HOST:VOTESTREAM_INGEST_PORT at once:
/healthz from the start, /readyz and the routes once Postgres and Kafka answer and the schema
is current. SIGTERM: new requests get 503, those waiting for Kafka's acks finish.
"""

from __future__ import annotations

import asyncio
import os
import sys

from services.ingest.app import create_app
from services.ingest.ballots import BallotDesk
from services.ingest.deps import IngestDeps
from services.ingest.intake import KafkaBallotSink, RecentBallots
from services.ingest.metrics import IngestMetrics
from services.ingest.voters import TokenVerifier
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import SchemaTooNewError, connect_pool
from services.runtime.heap import settle_heap
from services.runtime.kafka import producer_for
from services.runtime.logs import setup_logging
from services.runtime.metrics import service_registry
from services.runtime.readiness import Readiness
from services.runtime.service import serve_until_stopped
from services.runtime.settings import Settings
from services.runtime.startup import (
    keep_trying,
    start_producer_when_reachable,
    wait_for_schema,
)

INGEST_SECRETS = ("admin_token", "identity_key")


async def run(settings: Settings) -> None:
    # Nothing connects here: the port serves /healthz at once, and `start` reaches Postgres
    # and Kafka behind it, for as long as they take to come up.
    pool = await connect_pool(settings.dsn, min_size=0, max_size=20, stateless=True)
    producer = producer_for(settings)
    store = CampaignStore(pool)
    campaigns = CampaignCache(store, settings.campaign_refresh)
    registry = service_registry()
    deps = IngestDeps(
        settings=settings,
        pool=pool,
        campaign_store=store,
        campaigns=campaigns,
        desk=BallotDesk(KafkaBallotSink(producer), pool, RecentBallots()),
        tokens=TokenVerifier.from_settings(settings),
        metrics=IngestMetrics.create(registry),
        registry=registry,
        readiness=Readiness(registry=registry),
    )

    async def start() -> None:
        await wait_for_schema(settings.dsn)
        await start_producer_when_reachable(producer)
        await keep_trying("the campaigns", campaigns.start)

    app = create_app(deps)
    settle_heap()  # the app is built: what exists now lives as long as the process
    try:
        await serve_until_stopped(
            app,
            settings.host,
            settings.ingest_port,
            readiness=deps.readiness,
            start=start,
        )
    finally:
        await campaigns.stop()
        await producer.stop()  # sends what it still holds before closing
        await pool.close()


def main() -> None:
    setup_logging("ingest")
    settings = Settings.from_env(os.environ, required=INGEST_SECRETS)
    try:
        asyncio.run(run(settings))
    except SchemaTooNewError as exc:
        sys.exit(f"ingest: {exc}")


if __name__ == "__main__":
    main()
