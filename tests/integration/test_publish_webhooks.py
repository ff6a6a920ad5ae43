"""Webhooks against a real local receiver whose endpoints fail, time out, die and recover.

The publisher runs on a real PostgreSQL; every endpoint has its own queue and task, so the
healthy one gets each snapshot at once while the others are still failing, and the
publisher itself never waits for any of them. The receiver checks every delivery with the
Python in docs/VERIFYING.md, run as written there.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from services.domain.campaign import Campaign, parse_campaign
from services.publish.metrics import PublishMetrics
from services.publish.sinks import QueuedSink
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.publish.webhooks import Backoff, WebhookSink
from services.runtime.campaigns import CampaignStore
from tests.support.waiting import eventually_async

SECRET = "webhook-test-secret"
SNAPSHOTS = 5
QUICK = Backoff(timeout=0.3, initial=0.05, maximum=0.3, give_up_after=60)
DOC = Path(__file__).resolve().parents[2] / "docs" / "VERIFYING.md"
Receive = Callable[[Mapping[str, str], bytes], str]
SIGNED = re.compile(r"t=(\d+),v1=([0-9a-f]{64})")


def documented_receiver() -> Receive:
    """The receiver in docs/VERIFYING.md's webhook section, with its own `seen` set."""
    section = DOC.read_text("utf-8").split("## Webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "docs/VERIFYING.md shows a webhook receiver in Python"
    namespace: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VOTESTREAM_WEBHOOK_SECRET", SECRET)
        exec(compile(code.group(1), str(DOC), "exec"), namespace)  # our own doc, as written
    receive: Receive = namespace["receive"]
    return receive


def hmac_of(t: str, body: bytes) -> str:
    """Computed here, independently of the sender: HMAC-SHA256 of "t.body"."""
    return hmac.new(SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass
class Endpoint:
    """One receiver path: fails its first `failures` requests, or hangs on its first `hangs`."""

    failures: int = 0
    hangs: int = 0
    requests: int = 0
    got: dict[int, float] = field(default_factory=dict)  # seq -> when first received
    bad_signatures: int = 0
    attempts: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    receive: Receive = field(default_factory=documented_receiver)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        self.attempts.append((orjson.loads(body)["seq"], dict(request.headers), body))
        if self.requests <= self.hangs:
            await asyncio.sleep(2)  # far past the sender's timeout
            return web.Response(status=504)
        if self.requests <= self.failures:
            return web.Response(status=500)
        try:
            fresh = self.receive(request.headers, body) == "new"
        except ValueError:
            self.bad_signatures += 1
            return web.Response(status=401)
        if fresh:
            self.got.setdefault(orjson.loads(body)["seq"], time.monotonic())
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, dict[str, Endpoint]]]:
    endpoints = {"healthy": Endpoint(), "flaky": Endpoint(failures=4), "slow": Endpoint(hangs=2)}
    app = web.Application()
    for name, endpoint in endpoints.items():
        app.router.add_post(f"/{name}", endpoint.handle)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", endpoints
    await runner.cleanup()


def dead_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/gone"


def open_campaign() -> Campaign:
    now = datetime.now(UTC)
    return parse_campaign(
        {
            "id": "hooks",
            "title": "t",
            "organizer": "o",
            "question": "q",
            "timezone": "UTC",
            "opens_at": (now - timedelta(hours=1)).isoformat(),
            "closes_at": (now + timedelta(hours=1)).isoformat(),
            "top_n": 1,
            "candidates": [{"id": "c1", "title": "C1", "unit": "u"}],
        }
    )


async def test_each_endpoint_gets_every_snapshot_and_none_delays_another(
    database: str, receiver: tuple[str, dict[str, Endpoint]]
) -> None:
    base, endpoints = receiver
    pool = await asyncpg.create_pool(database)
    assert pool is not None
    metrics = PublishMetrics.create(CollectorRegistry())
    deliveries = metrics.webhook_deliveries
    async with aiohttp.ClientSession() as http:
        sinks = [
            QueuedSink(name, WebhookSink(f"{base}/{name}", SECRET, http, deliveries, QUICK))
            for name in endpoints
        ]
        dead = Backoff(timeout=0.3, initial=0.05, maximum=0.2, give_up_after=1)
        sinks.append(QueuedSink("dead", WebhookSink(dead_url(), SECRET, http, deliveries, dead)))
        for sink in sinks:
            sink.start()
        campaign = open_campaign()
        await CampaignStore(pool).put(campaign)
        publisher = Publisher(SnapshotStore(pool), Ed25519PrivateKey.generate(), _never, sinks)
        published_at: dict[int, float] = {}
        try:
            for votes in range(1, SNAPSHOTS + 1):
                await pool.execute(
                    "INSERT INTO tallies VALUES ('hooks', 'c1', 'web', now(), 0, $1)", votes
                )
                started = time.monotonic()
                snapshot = await publisher.publish(campaign)
                assert snapshot is not None
                assert time.monotonic() - started < 0.5, "publishing never waits for a webhook"
                published_at[snapshot["seq"]] = started

            healthy = endpoints["healthy"]
            await eventually_async(lambda: _all(healthy), timeout=10, what="healthy got all")
            for seq, at in published_at.items():
                assert healthy.got[seq] - at < 1.0, (
                    f"snapshot {seq} reached the healthy endpoint late"
                )
            assert len(endpoints["flaky"].got) < SNAPSHOTS or len(endpoints["slow"].got) < SNAPSHOTS

            for name in ("flaky", "slow"):
                await eventually_async(lambda n=name: _all(endpoints[n]), timeout=30, what=name)
            await asyncio.wait_for(asyncio.gather(*(s.drained() for s in sinks)), 30)
        finally:
            for sink in sinks:
                await sink.stop()
            await pool.close()
    assert all(e.bad_signatures == 0 for e in endpoints.values())
    assert deliveries.labels("delivered")._value.get() == 3 * SNAPSHOTS
    assert deliveries.labels("retried")._value.get() >= 4 + 2
    assert deliveries.labels("failed")._value.get() >= 1  # the dead endpoint gave up
    _check_delivery_ids(endpoints)


def _check_delivery_ids(endpoints: dict[str, Endpoint]) -> None:
    """Every attempt is signed over its own t and the body; a delivery (one snapshot to one
    endpoint) keeps its id across retries, and no two deliveries share one."""
    ids: dict[tuple[str, int], set[str]] = {}
    for name, endpoint in endpoints.items():
        for seq, headers, body in endpoint.attempts:
            signed = SIGNED.fullmatch(headers["X-Votestream-Signature"])
            assert signed is not None, headers["X-Votestream-Signature"]
            t, v1 = signed.groups()
            assert v1 == hmac_of(t, body) and abs(time.time() - int(t)) < 120
            ids.setdefault((name, seq), set()).add(headers["X-Votestream-Delivery"])
    assert all(len(same) == 1 for same in ids.values()), "one id across a delivery's retries"
    assert len({i for same in ids.values() for i in same}) == len(ids) == 3 * SNAPSHOTS
    flaky_firsts = [a for a in endpoints["flaky"].attempts if a[0] == 1]
    assert len(flaky_firsts) == 5, "the flaky endpoint saw snapshot 1 five times"


async def test_the_documented_receiver_refuses_a_changed_t_an_old_t_and_a_repeat(
    database: str, receiver: tuple[str, dict[str, Endpoint]]
) -> None:
    base, endpoints = receiver
    healthy = endpoints["healthy"]
    async with aiohttp.ClientSession() as http:
        sink = WebhookSink(f"{base}/healthy", SECRET, http, _deliveries(), QUICK)
        await sink({"campaign_id": "hooks", "seq": 1, "hash": "ab" * 32})
    assert len(healthy.got) == 1 and healthy.bad_signatures == 0
    _, headers, body = healthy.attempts[0]
    t, v1 = headers["X-Votestream-Signature"].removeprefix("t=").split(",v1=")
    receive = documented_receiver()
    assert receive(headers, body) == "new"
    assert receive(headers, body) == "repeat"  # the same delivery id again
    other = {**headers, "X-Votestream-Delivery": "another"}
    with pytest.raises(ValueError, match="signature"):  # t moved forward, v1 kept
        receive({**other, "X-Votestream-Signature": f"t={int(t) + 600},v1={v1}"}, body)
    with pytest.raises(ValueError, match="signature"):  # the body changed under a valid t
        receive(other, body.replace(b'"seq":1', b'"seq":2'))
    old = str(int(time.time()) - 301)  # signed right, but captured over five minutes ago
    with pytest.raises(ValueError, match="five minutes"):
        receive({**other, "X-Votestream-Signature": f"t={old},v1={hmac_of(old, body)}"}, body)
    assert receive(other, body) == "new"


def _deliveries() -> Any:
    return PublishMetrics.create(CollectorRegistry()).webhook_deliveries


async def _all(endpoint: Endpoint) -> bool:
    return sorted(endpoint.got) == list(range(1, SNAPSHOTS + 1))


async def _never(_: Campaign) -> int:
    raise AssertionError("the campaign is open: no cut-off yet")
