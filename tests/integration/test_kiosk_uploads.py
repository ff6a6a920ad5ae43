"""Kiosk uploads through the real ingest app and a real PostgreSQL, with a sink whose broker
can be switched off: replays, broker failure, concurrent retries, chain breaks, the registry."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from services.domain.ballot import Ballot
from services.domain.errors import UnavailableError
from services.domain.voters import voter_key, web_identity
from services.ingest.app import create_app
from services.ingest.ballots import BallotDesk
from services.ingest.deps import IngestDeps
from services.ingest.intake import RecentBallots
from services.ingest.metrics import IngestMetrics
from services.ingest.voters import TokenVerifier
from services.kiosk_agent.identity import Sealer
from services.kiosk_agent.keys import public_key_text, sign_batch
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.settings import Settings
from tests.support.campaigns import make_campaign
from tests.support.kiosk_refs import sealed_ref

ADMIN = {"Authorization": "Bearer admin-secret"}
NOW = datetime.now(UTC)


class SwitchableSink:
    """Records what reached "the broker"; while `down`, refuses like KafkaBallotSink does."""

    def __init__(self) -> None:
        self.published: list[uuid.UUID] = []
        self.voter_keys: list[str] = []
        self.down = False

    async def submit(self, ballot: Ballot) -> None:
        await asyncio.sleep(0)  # let concurrent uploads interleave
        if self.down:
            raise UnavailableError("the ballot box is busy, try again", retry_after=2)
        self.published.append(ballot.ballot_id)
        self.voter_keys.append(ballot.voter_key)


@dataclass
class Kiosk:
    device_id: str = field(default_factory=lambda: f"k-{uuid.uuid4().hex[:8]}")
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def body(self, seq: int, entries: list[dict[str, Any]], prev: bytes | None = None) -> bytes:
        prev_hash = hashlib.sha256(prev).hexdigest() if prev is not None else None
        doc = {"batch_id": str(uuid.uuid4()), "seq": seq, "prev_hash": prev_hash}
        return orjson.dumps({**doc, "ballots": entries})

    def headers(self, body: bytes, moment: datetime | None = None) -> dict[str, str]:
        stamp = (moment or datetime.now(UTC)).isoformat()
        return {
            "X-Kiosk-Id": self.device_id,
            "X-Kiosk-Timestamp": stamp,
            "X-Kiosk-Signature": sign_batch(self.key, stamp, body),
        }


def entry(voter: str, selections: list[str]) -> dict[str, Any]:
    return {
        "ballot_id": str(uuid.uuid4()),
        "campaign_id": "kc",
        "voter_ref": sealed_ref(b"pepper", "kc", voter),
        "selections": selections,
        "cast_at": NOW.isoformat(),
    }


@dataclass
class Ingest:
    client: TestClient[Any, Any]
    sink: SwitchableSink
    pool: asyncpg.Pool
    registry: CollectorRegistry

    async def register(self, kiosk: Kiosk) -> None:
        body = {"device_id": kiosk.device_id, "public_key": public_key_text(kiosk.key)}
        response = await self.client.post("/v1/admin/kiosks", json=body, headers=ADMIN)
        assert response.status == 201, await response.text()

    async def upload(self, kiosk: Kiosk, body: bytes) -> tuple[int, Any]:
        response = await self.client.post(
            "/v1/kiosk/batches", data=body, headers=kiosk.headers(body)
        )
        return response.status, orjson.loads(await response.read())


@pytest.fixture
async def ingest(database: str) -> AsyncIterator[Ingest]:
    async with running_ingest(database, pool_size=10) as running:
        yield running


@contextlib.asynccontextmanager
async def running_ingest(database: str, pool_size: int) -> AsyncIterator[Ingest]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=pool_size)
    assert pool is not None
    store = CampaignStore(pool)
    await store.put(make_campaign("kc", candidates=("c0", "c1", "c2", "c3"), top_n=1, now=NOW))
    campaigns = CampaignCache(store, 60)
    await campaigns.load()
    sink, registry = SwitchableSink(), CollectorRegistry()
    deps = IngestDeps(
        settings=Settings(
            admin_token="admin-secret", identity_key="pepper", public_base_url="http://vote.test"
        ),
        pool=pool,
        campaign_store=store,
        campaigns=campaigns,
        desk=BallotDesk(sink, pool, RecentBallots()),
        tokens=TokenVerifier("jwt-secret"),
        metrics=IngestMetrics.create(registry),
        registry=registry,
    )
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(deps)))
    await client.start_server()
    try:
        yield Ingest(client, sink, pool, registry)
    finally:
        await client.close()
        await pool.close()


async def test_the_same_batch_again_gets_the_same_answer_and_publishes_nothing_new(
    ingest: Ingest,
) -> None:
    kiosk = Kiosk()
    await ingest.register(kiosk)
    entries = [entry("a", ["c1"]), entry("b", ["c1", "c2"]), entry("c", ["c1", "c2", "c3"])]
    body = kiosk.body(1, entries)
    status, answer = await ingest.upload(kiosk, body)
    assert status == 200
    assert answer["results"] == [
        {"ballot_id": entries[0]["ballot_id"], "status": "accepted", "reason": None},
        {"ballot_id": entries[1]["ballot_id"], "status": "accepted", "reason": None},
        {
            "ballot_id": entries[2]["ballot_id"],
            "status": "rejected",
            "reason": "too_many_selections",
        },
    ]
    assert len(ingest.sink.published) == 2
    again = await asyncio.gather(*(ingest.upload(kiosk, body) for _ in range(3)))
    assert again == [(200, answer)] * 3
    assert len(ingest.sink.published) == 2
    replayed = ingest.registry.get_sample_value(
        "votestream_kiosk_batches_total", {"outcome": "replayed"}
    )
    assert replayed == 3


async def test_concurrent_first_uploads_of_one_batch_publish_it_once(ingest: Ingest) -> None:
    kiosk = Kiosk()
    await ingest.register(kiosk)
    entries = [entry(f"v{i}", ["c0"]) for i in range(50)]
    body = kiosk.body(1, entries)
    answers = await asyncio.gather(*(ingest.upload(kiosk, body) for _ in range(4)))
    assert {status for status, _ in answers} == {200}
    assert all(doc == answers[0][1] for _, doc in answers)
    assert sorted(ingest.sink.published) == sorted(uuid.UUID(e["ballot_id"]) for e in entries)


async def test_a_broker_failure_answers_503_stores_nothing_and_the_retry_succeeds(
    ingest: Ingest,
) -> None:
    kiosk = Kiosk()
    await ingest.register(kiosk)
    body = kiosk.body(1, [entry("a", ["c1"]), entry("b", ["c2"])])
    ingest.sink.down = True
    response = await ingest.client.post("/v1/kiosk/batches", data=body, headers=kiosk.headers(body))
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    assert (await response.json())["error"]["code"] == "unavailable"
    assert await ingest.pool.fetchval("SELECT count(*) FROM kiosk_batches") == 0
    assert (
        await ingest.pool.fetchval(
            "SELECT last_seq FROM kiosk_devices WHERE device_id = $1", kiosk.device_id
        )
        is None
    )
    ingest.sink.down = False
    status, answer = await ingest.upload(kiosk, body)
    assert status == 200 and {r["status"] for r in answer["results"]} == {"accepted"}
    assert len(ingest.sink.published) == 2


async def test_ballots_already_taken_in_an_earlier_batch_are_not_published_again(
    ingest: Ingest,
) -> None:
    kiosk = Kiosk()
    await ingest.register(kiosk)
    first_entries = [entry("a", ["c1"])]
    first = kiosk.body(1, first_entries)
    assert (await ingest.upload(kiosk, first))[0] == 200
    second = kiosk.body(2, [*first_entries, entry("b", ["c2"])], prev=first)
    status, answer = await ingest.upload(kiosk, second)
    assert status == 200 and [r["status"] for r in answer["results"]] == ["accepted"] * 2
    assert len(ingest.sink.published) == 2


async def test_gaps_and_forks_are_recorded_counted_and_listed(ingest: Ingest) -> None:
    kiosk = Kiosk()
    await ingest.register(kiosk)
    one = kiosk.body(1, [entry("a", ["c1"])])
    three = kiosk.body(3, [entry("b", ["c1"])], prev=b"batch two never arrived")
    four = kiosk.body(4, [entry("c", ["c1"])], prev=one)  # claims to follow batch one
    unlinked = kiosk.body(5, [entry("d", ["c1"])])  # names no predecessor: a fork too
    for body in (one, three, four, unlinked):
        assert (await ingest.upload(kiosk, body))[0] == 200
    status, refusal = await ingest.upload(kiosk, kiosk.body(2, [entry("e", ["c1"])], prev=one))
    assert status == 409 and refusal["error"]["code"] == "stale_seq"
    listing = await ingest.client.get("/v1/admin/kiosks", headers=ADMIN)
    (mine,) = [k for k in (await listing.json())["kiosks"] if k["device_id"] == kiosk.device_id]
    assert mine["last_seq"] == 5 and mine["batches"] == 4
    assert mine["last_batch_hash"] == hashlib.sha256(unlinked).hexdigest()
    chain = mine["chain"]
    assert (chain["status"], chain["gaps"], chain["forks"]) == ("broken", 1, 3)
    assert [(b["kind"], b["seq"], b["expected_seq"]) for b in chain["breaks"]] == [
        ("gap", 3, 2),
        ("fork", 4, 4),
        ("fork", 5, 5),
        ("fork", 2, 6),
    ]
    sample = ingest.registry.get_sample_value
    assert sample("votestream_kiosk_chain_breaks_total", {"kind": "gap"}) == 1
    assert sample("votestream_kiosk_chain_breaks_total", {"kind": "fork"}) == 3


async def test_the_registry_admin_api(ingest: Ingest) -> None:
    kiosk, post = Kiosk(), ingest.client.post
    key = public_key_text(kiosk.key)
    body = {"device_id": kiosk.device_id, "public_key": key}
    assert (await post("/v1/admin/kiosks", json=body)).status == 401
    assert (await post("/v1/admin/kiosks", json=body, headers=ADMIN)).status == 201
    assert (await post("/v1/admin/kiosks", json=body, headers=ADMIN)).status == 200
    other = {**body, "public_key": public_key_text(Ed25519PrivateKey.generate())}
    conflict = await post("/v1/admin/kiosks", json=other, headers=ADMIN)
    assert conflict.status == 409 and (await conflict.json())["error"]["code"] == "device_exists"
    bad = await post("/v1/admin/kiosks", json={**body, "public_key": "AAAA"}, headers=ADMIN)
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_public_key"
    delete = ingest.client.delete
    assert (await delete(f"/v1/admin/kiosks/{kiosk.device_id}")).status == 401
    revoked = await delete(f"/v1/admin/kiosks/{kiosk.device_id}", headers=ADMIN)
    assert revoked.status == 200 and (await revoked.json())["revoked"] is True
    again = await post("/v1/admin/kiosks", json=body, headers=ADMIN)
    assert again.status == 409 and (await again.json())["error"]["code"] == "device_revoked"
    assert (await delete("/v1/admin/kiosks/nobody", headers=ADMIN)).status == 404
    status, refusal = await ingest.upload(kiosk, kiosk.body(1, [entry("a", ["c1"])]))
    assert status == 401 and refusal["error"]["code"] == "device_revoked"


async def test_many_kiosks_at_once_never_lock_up_a_small_pool(database: str) -> None:
    """Each upload holds a connection while its ballots need more: uploads are bounded."""
    async with running_ingest(database, pool_size=4) as small:
        kiosks = [Kiosk() for _ in range(8)]
        for kiosk in kiosks:
            await small.register(kiosk)
        bodies = [
            k.body(1, [entry(f"{k.device_id}-{i}", ["c1"]) for i in range(30)]) for k in kiosks
        ]
        async with asyncio.timeout(60):
            answers = await asyncio.gather(
                *(small.upload(k, b) for k, b in zip(kiosks, bodies, strict=True))
            )
        assert [status for status, _ in answers] == [200] * 8
        assert len(small.sink.published) == 8 * 30


async def test_a_phone_at_a_kiosk_is_the_voter_the_web_channel_knows_and_no_ref_is_kept(
    ingest: Ingest,
) -> None:
    kiosk = Kiosk()
    await ingest.register(kiosk)
    shown = await (await ingest.client.get("/v1/kiosk/sealing-key")).json()
    sealer = Sealer.from_text(shown["public_key"])
    phone_ref = sealer.voter_ref("kc", "139 0000 1111")
    entries = [
        {**entry("x", ["c1"]), "voter_ref": phone_ref},
        {**entry("y", ["c1"]), "voter_ref": hashlib.sha256(b"+8613900001112").hexdigest()},
        {**entry("z", ["c1"]), "voter_ref": sealer.voter_ref("another", "13900001113")},
    ]
    status, answer = await ingest.upload(kiosk, kiosk.body(1, entries))
    assert status == 200
    assert [(r["status"], r["reason"]) for r in answer["results"]] == [
        ("accepted", None),
        ("rejected", "bad_voter_ref"),  # a hash: what a stolen kiosk could brute-force
        ("rejected", "bad_voter_ref"),  # sealed for another campaign
    ]
    assert ingest.sink.voter_keys == [
        voter_key(b"pepper", "kc", web_identity("any-login", "+8613900001111"))
    ]
    stored = await ingest.pool.fetch("SELECT * FROM kiosk_batches")
    assert stored and not any(phone_ref[:40] in str(dict(row)) for row in stored)
