"""Run the publisher: `votestream publish` (or `python -m services.publish`).

Serves the results API, the live stream and the publication page on VOTESTREAM_PUBLISH_PORT.
Several may run; one at a time holds the publishing lock (services/publish/leader.py) and
seals snapshots, pushing each to the stream, Kafka `snapshots`, the files in
VOTESTREAM_PUBLISH_DIR and every VOTESTREAM_WEBHOOKS URL; the others serve and stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os

import aiohttp
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.publish.app import create_app
from services.publish.cutoff import KafkaCutoffWriter
from services.publish.deps import PublishDeps
from services.publish.files import FileSink
from services.publish.kafka_sink import KafkaSnapshotSink
from services.publish.leader import PublishRound, lead
from services.publish.metrics import PublishMetrics
from services.publish.sinks import QueuedSink
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.publish.stream import SnapshotHub, follow
from services.publish.webhooks import WebhookSink
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import connect_pool
from services.runtime.kafka import producer_for, start_producer
from services.runtime.logs import setup_logging
from services.runtime.metrics import service_registry
from services.runtime.service import serve_until_stopped
from services.runtime.settings import Settings

DRAIN_SECONDS = 5.0  # on stop, how long the sinks may finish what they hold


def build_sinks(
    deps: PublishDeps, producer: AIOKafkaProducer, http: aiohttp.ClientSession
) -> list[QueuedSink]:
    """One queue and task per channel, so none can hold up another or the publisher."""
    s = deps.settings
    failed = deps.metrics.webhook_deliveries.labels("failed")
    sinks = [
        QueuedSink("kafka", KafkaSnapshotSink(producer)),
        QueuedSink("files", FileSink(s.results_dir, deps.campaigns.get, deps.store.timeseries)),
    ]
    for number, url in enumerate(s.webhooks, start=1):
        deliver = WebhookSink(url, s.webhook_secret, http, deps.metrics.webhook_deliveries)
        sinks.append(QueuedSink(f"webhook-{number}", deliver, on_dropped=lambda _: failed.inc()))
    return sinks


async def run(settings: Settings) -> None:
    pool = await connect_pool(settings.dsn, max_size=10)
    producer = producer_for(settings)
    campaigns = CampaignCache(CampaignStore(pool), settings.campaign_refresh)
    signing_key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.signing_key))
    http = aiohttp.ClientSession()
    sinks: list[QueuedSink] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await start_producer(producer)
        await campaigns.start()
        registry = service_registry()
        store = SnapshotStore(pool)
        metrics = PublishMetrics.create(registry)
        deps = PublishDeps(
            settings, pool, store, campaigns, signing_key, metrics, registry, SnapshotHub()
        )
        sinks = build_sinks(deps, producer, http)
        for sink in sinks:
            sink.start()
        cutoff = KafkaCutoffWriter(producer)
        publisher = Publisher(store, signing_key, cutoff, [deps.hub, *sinks])
        work = PublishRound(campaigns.all, publisher, store, metrics)
        follow_every = min(max(settings.snapshot_interval / 2, 0.1), 1.0)
        tasks = [
            asyncio.create_task(lead(pool, settings.snapshot_interval, work)),
            asyncio.create_task(follow(deps.hub, store.newer, follow_every)),
        ]
        await serve_until_stopped(create_app(deps), settings.host, settings.publish_port)
    finally:
        await _stop(tasks, sinks)
        await http.close()
        await campaigns.stop()
        await producer.stop()
        await pool.close()


async def _stop(tasks: list[asyncio.Task[None]], sinks: list[QueuedSink]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(s.drained() for s in sinks)), DRAIN_SECONDS)
    for sink in sinks:
        await sink.stop()


def main() -> None:
    setup_logging("publish")
    # webhooks are signed with the webhook secret: without one, refuse to start
    needed = ("signing_key", "webhook_secret") if os.environ.get("VOTESTREAM_WEBHOOKS") else ()
    asyncio.run(run(Settings.from_env(os.environ, required=needed or ("signing_key",))))


if __name__ == "__main__":
    main()
