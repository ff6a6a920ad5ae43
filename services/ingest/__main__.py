"""Run the ingest service: `votestream ingest` (or `python -m services.ingest`).

Reads VOTESTREAM_* settings, connects Postgres and Kafka, serves on VOTESTREAM_INGEST_PORT.
"""

from __future__ import annotations

import asyncio
import os

from services.ingest.app import create_app
from services.ingest.ballots import BallotDesk
from services.ingest.deps import IngestDeps
from services.ingest.intake import KafkaBallotSink, RecentBallots
from services.ingest.metrics import IngestMetrics
from services.ingest.voters import TokenVerifier
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import connect_pool
from services.runtime.kafka import producer_for, start_producer
from services.runtime.logs import setup_logging
from services.runtime.metrics import service_registry
from services.runtime.service import serve_until_stopped
from services.runtime.settings import Settings

INGEST_SECRETS = ("admin_token", "identity_key")


async def run(settings: Settings) -> None:
    pool = await connect_pool(settings.dsn, max_size=20, stateless=True)
    producer = producer_for(settings)
    store = CampaignStore(pool)
    campaigns = CampaignCache(store, settings.campaign_refresh)
    try:
        await start_producer(producer)
        await campaigns.start()
        registry = service_registry()
        desk = BallotDesk(KafkaBallotSink(producer), pool, RecentBallots())
        deps = IngestDeps(
            settings=settings,
            pool=pool,
            campaign_store=store,
            campaigns=campaigns,
            desk=desk,
            tokens=TokenVerifier(settings.web_jwt_secret, settings.web_jwt_public_key),
            metrics=IngestMetrics.create(registry),
            registry=registry,
        )
        await serve_until_stopped(create_app(deps), settings.host, settings.ingest_port)
    finally:
        await campaigns.stop()
        await producer.stop()
        await pool.close()


def main() -> None:
    setup_logging("ingest")
    asyncio.run(run(Settings.from_env(os.environ, required=INGEST_SECRETS)))


if __name__ == "__main__":
    main()
