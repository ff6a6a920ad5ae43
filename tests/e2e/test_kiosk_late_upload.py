"""Kiosks upload late: ballots cast before the close are taken until close + kiosk_grace,
and only those make it into the sealed final result."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kiosk_agent.keys import public_key_text
from services.kiosk_agent.uploader import signed_headers
from tests.support.kiosk_refs import phone_of, system_sealer
from tests.support.system import System
from tests.support.waiting import eventually

GRACE = timedelta(seconds=8)


def entry(
    system: System, campaign_id: str, voter: str, cast_at: datetime, choice: str
) -> dict[str, Any]:
    return {
        "ballot_id": str(uuid.uuid4()),
        "campaign_id": campaign_id,
        "voter_ref": system_sealer(system).voter_ref(campaign_id, phone_of(voter)),
        "selections": [choice],
        "cast_at": cast_at.isoformat(),
    }


def wait_past(moment: datetime) -> None:
    """Waits for a moment on the clock (the condition itself, not a guess)."""
    eventually(lambda: datetime.now(UTC) > moment, timeout=60, what=f"the clock past {moment}")


def test_ballots_cast_before_close_count_until_the_grace_ends(system: System) -> None:
    closes_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    campaign = system.new_campaign(
        closes_at=closes_at.isoformat(), kiosk_grace=f"{int(GRACE.total_seconds())}s"
    )
    cid = campaign["id"]
    device_id, key = f"late-{uuid.uuid4().hex[:8]}", Ed25519PrivateKey.generate()
    registered = httpx.post(
        f"{system.ingest}/v1/admin/kiosks",
        json={"device_id": device_id, "public_key": public_key_text(key)},
        headers=system.admin_headers(),
    )
    assert registered.status_code == 201
    before_close = datetime.now(UTC)
    assert before_close < closes_at, "the campaign closed before the test could cast"
    in_time = [entry(system, cid, f"v{i}", before_close, "c01") for i in range(3)]
    cast_after_close = entry(system, cid, "v-late", closes_at + timedelta(seconds=1), "c02")
    too_late = entry(system, cid, "v-too-late", before_close, "c03")

    def send(seq: int, entries: list[dict[str, Any]], prev: bytes | None) -> tuple[bytes, Any]:
        prev_hash = hashlib.sha256(prev).hexdigest() if prev else None
        doc = {"batch_id": str(uuid.uuid4()), "seq": seq, "prev_hash": prev_hash}
        body = orjson.dumps({**doc, "ballots": entries})
        headers = signed_headers(device_id, key, body, datetime.now(UTC))
        response = httpx.post(f"{system.ingest}/v1/kiosk/batches", content=body, headers=headers)
        assert response.status_code == 200, response.text
        return body, {
            r["ballot_id"]: (r["status"], r["reason"]) for r in response.json()["results"]
        }

    wait_past(closes_at + timedelta(seconds=1, milliseconds=100))
    first, results = send(1, [*in_time, cast_after_close], None)
    assert datetime.now(UTC) < closes_at + GRACE, "the upload was meant to land inside the grace"
    assert [results[e["ballot_id"]] for e in in_time] == [("accepted", None)] * 3
    assert results[cast_after_close["ballot_id"]] == ("rejected", "campaign_closed")

    wait_past(closes_at + GRACE)
    _, results = send(2, [too_late], first)
    assert results[too_late["ballot_id"]] == ("rejected", "campaign_closed")

    def final() -> dict[str, Any] | None:
        response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results/final", timeout=5)
        return response.json() if response.status_code == 200 else None

    sealed = eventually(final, timeout=90, what="the final result sealed")
    assert sealed["final"] is True and sealed["ballots_counted"] == 3
    votes = {c["id"]: c["by_channel"]["kiosk"] for c in sealed["candidates"] if c["votes"]}
    assert votes == {"c01": 3}
