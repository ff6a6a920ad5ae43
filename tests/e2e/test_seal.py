"""The sealed final on the running system: a campaign that closes a few seconds into the test.

Web ballots stream in up to and past the close; the final waits for the kiosk grace and the
cut-off markers, equals an independent count of every accepted ballot, verifies with the
public key, and stays put when a late ballot arrives.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.events import encode_ballot
from services.domain.ballot import Ballot
from services.domain.snapshot import verify
from services.runtime.kafka import BALLOTS, make_producer
from tests.support.system import System
from tests.support.waiting import eventually

CLOSES_IN = timedelta(seconds=6)
KIOSK_GRACE = "3s"


class Voters:
    """Casts web ballots from fresh voters until the campaign refuses them as closed."""

    def __init__(self, system: System, campaign: dict[str, Any]) -> None:
        self.system, self.cid = system, campaign["id"]
        self.candidates = [c["id"] for c in campaign["candidates"]]
        self.accepted: Counter[str] = Counter()
        self.ballots = 0
        self.refused: Counter[str] = Counter()
        self.lock = threading.Lock()

    def cast_until_closed(self, worker: int) -> None:
        rng = random.Random(worker)
        # each worker from a network of its own (all of 127.0.0.0/8 reaches the ingest), as
        # real voters come from many: the per-network rate limit is not what this test is about
        transport = httpx.HTTPTransport(local_address=f"127.0.{worker + 1}.1")
        with httpx.Client(timeout=10, transport=transport) as client:
            for n in range(100_000):
                selections = rng.sample(self.candidates, rng.randint(1, 10))
                token = self.system.voter_token(f"seal-{worker}-{n}")
                response = client.post(
                    f"{self.system.ingest}/v1/campaigns/{self.cid}/ballots",
                    json={"selections": selections},
                    headers={"Authorization": f"Bearer {token}"},
                )
                with self.lock:
                    if response.status_code == 202:
                        self.accepted.update(selections)
                        self.ballots += 1
                        continue
                    self.refused[response.json()["error"]["code"]] += 1
                return


def get(system: System, path: str) -> httpx.Response:
    return httpx.get(f"{system.publish}{path}", timeout=10)


def test_one_final_is_sealed_after_the_grace_equal_to_an_independent_count(
    system: System,
) -> None:
    closes_at = datetime.now(UTC).replace(microsecond=0) + CLOSES_IN
    campaign = system.new_campaign(closes_at=closes_at.isoformat(), kiosk_grace=KIOSK_GRACE)
    cid = campaign["id"]
    voters = Voters(system, campaign)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(voters.cast_until_closed, range(6)))
    assert voters.ballots > 20, "ballots were in flight up to the close"
    assert voters.refused == Counter({"campaign_closed": 6})
    assert get(system, f"/v1/campaigns/{cid}/results/final").status_code == 404

    final = eventually(
        lambda: (
            (r := get(system, f"/v1/campaigns/{cid}/results/final")).status_code == 200 and r.json()
        ),
        timeout=60,
        what="the final sealed",
    )
    cutoff = closes_at + timedelta(seconds=3)
    assert datetime.fromisoformat(final["as_of"]) >= cutoff
    assert final["final"] is True
    assert final["ballots_counted"] == voters.ballots
    assert {c["id"]: c["votes"] for c in final["candidates"]} == {
        c: voters.accepted.get(c, 0) for c in voters.candidates
    }
    key_b64 = get(system, "/v1/publish/public-key").json()["public_key"]
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key_b64))
    assert verify(final, public_key) == []

    late_web = httpx.post(
        f"{system.ingest}/v1/campaigns/{cid}/ballots",
        json={"selections": ["c01"]},
        headers={"Authorization": f"Bearer {system.voter_token('seal-late')}"},
        timeout=10,
    )
    assert late_web.status_code == 409
    assert late_web.json()["error"]["code"] == "campaign_closed"

    # A kiosk ballot cast and received in time that reached Kafka only after the cut-off
    # markers: the tally refuses it, and the sealed final does not move.
    late_kiosk = asyncio.run(produce_late_kiosk_ballot(system, cid, closes_at))
    fate = eventually(
        lambda: (
            (r := httpx.get(f"{system.ingest}/v1/ballots/{late_kiosk}")).status_code == 200
            and r.json()
        ),
        timeout=30,
        what="the late kiosk ballot decided",
    )
    assert (fate["status"], fate["reason"]) == ("rejected", "campaign_closed")

    assert get(system, f"/v1/campaigns/{cid}/results/final").json() == final
    history = get(system, f"/v1/campaigns/{cid}/snapshots?limit=1000").json()["snapshots"]
    assert [s["final"] for s in history].count(True) == 1
    assert history[0] == final, "nothing is published after the final"
    assert_chained(list(reversed(history)))


def assert_chained(snapshots: list[dict[str, Any]]) -> None:
    assert [s["seq"] for s in snapshots] == list(range(1, len(snapshots) + 1))
    assert snapshots[0]["prev_hash"] is None
    for before, after in itertools.pairwise(snapshots):
        assert after["prev_hash"] == before["hash"]


async def produce_late_kiosk_ballot(system: System, cid: str, closes_at: datetime) -> str:
    ballot = Ballot(
        ballot_id=uuid.uuid4(),
        campaign_id=cid,
        channel="kiosk",
        voter_key=hashlib.sha256(b"seal-late-kiosk").hexdigest(),
        selections=("c02",),
        cast_at=closes_at - timedelta(seconds=1),
        received_at=closes_at + timedelta(seconds=1),
        meta={"device_id": "kiosk-late"},
    )
    producer = make_producer(f"127.0.0.1:{system.ports['KAFKA']}")
    await producer.start()
    try:
        await producer.send_and_wait(BALLOTS, encode_ballot(ballot), key=ballot.voter_key.encode())
    finally:
        await producer.stop()
    return str(ballot.ballot_id)
