"""Run the publisher: `votestream publish` (or `python -m services.publish`).

Serves the results API, the live stream and the publication page on VOTESTREAM_PUBLISH_PORT.
Several may run; one at a time holds the publishing lock (services/publish/leader.py) and
seals snapshots, pushing each to the stream, Kafka `snapshots`, the files in
VOTESTREAM_PUBLISH_DIR and every VOTESTREAM_WEBHOOKS URL; the others serve and stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import aiohttp
from aiokafka import AIOKafkaProducer

from services.publish.app import create_app
from services.publish.cutoff import KafkaCutoffWriter
from services.publish.deps import PublishDeps
from services.publish.files import FileSink
from services.publish.hub import SnapshotHub
from services.publish.kafka_sink import KafkaSnapshotSink
from services.publish.leader import PublishRound, lead
from services.publish.metrics import PublishMetrics
from services.publish.signing import load_signing_key
from services.publish.sinks import QueuedSink
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.publish.stream import follow
from services.publish.webhooks import WebhookSink
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import SchemaTooNewError, connect_pool
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
    # Nothing connects here: the port serves /healthz at once, and `start` reaches Postgres
    # and Kafka behind it, for as long as they take to come up.
    pool = await connect_pool(settings.dsn, min_size=0, max_size=10)
    producer = producer_for(settings)
    campaigns = CampaignCache(CampaignStore(pool), settings.campaign_refresh)
    signing_key = load_signing_key(settings.signing_key)
    http = aiohttp.ClientSession()
    registry = service_registry()
    store = SnapshotStore(pool)
    metrics = PublishMetrics.create(registry)
    deps = PublishDeps(
        settings,
        pool,
        store,
        campaigns,
        signing_key,
        metrics,
        registry,
        SnapshotHub(),
        Readiness(registry=registry),
    )
    sinks = build_sinks(deps, producer, http)
    leading: list[asyncio.Task[None]] = []
    following: list[asyncio.Task[None]] = []

    async def start() -> None:
        await wait_for_schema(settings.dsn)
        await start_producer_when_reachable(producer)
        await keep_trying("the campaigns", campaigns.start)
        for sink in sinks:
            sink.start()
        publisher = Publisher(store, signing_key, KafkaCutoffWriter(producer), [deps.hub, *sinks])
        work = PublishRound(campaigns.all, publisher, store, metrics)
        follow_every = min(max(settings.snapshot_interval / 2, 0.1), 1.0)
        leading.append(asyncio.create_task(lead(pool, settings.snapshot_interval, work)))
        following.append(asyncio.create_task(follow(deps.hub, store.newer, follow_every)))

    async def hand_over() -> None:
        """First thing on stop: release the publishing lock, so another replica publishes
        from its next try, not once this process has finished serving."""
        await _stop(leading, [])

    try:
        await serve_until_stopped(
            create_app(deps),
            settings.host,
            settings.publish_port,
            readiness=deps.readiness,
            start=start,
            on_stop=hand_over,
            drain_seconds=0,  # closing the server ends the streams and awaits the rest
        )
    finally:
        await _stop(following, sinks)
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
    settings = Settings.from_env(os.environ, required=needed or ("signing_key",))
    try:
        asyncio.run(run(settings))
    except SchemaTooNewError as exc:
        sys.exit(f"publish: {exc}")


if __name__ == "__main__":
    main()
