"""Every refusal of the kiosk channel, over real HTTP with real Ed25519 signatures, and the
per-ballot reasons of an accepted batch, through Kafka and the tally to the results."""

from __future__ import annotations

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


def batch(seq: int, entries: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"batch_id": str(uuid.uuid4()), "seq": seq, "ballots": entries})


def entry(
    system: System, campaign_id: str, voter: str, selections: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "ballot_id": str(uuid.uuid4()),
        "campaign_id": campaign_id,
        "voter_ref": system_sealer(system).voter_ref(campaign_id, phone_of(voter)),
        "selections": selections,
        "cast_at": datetime.now(UTC).isoformat(),
        **extra,
    }


def register(system: System) -> tuple[str, Ed25519PrivateKey]:
    device_id, key = f"hall-{uuid.uuid4().hex[:8]}", Ed25519PrivateKey.generate()
    response = httpx.post(
        f"{system.ingest}/v1/admin/kiosks",
        json={"device_id": device_id, "public_key": public_key_text(key)},
        headers=system.admin_headers(),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return device_id, key


def upload(system: System, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{system.ingest}/v1/kiosk/batches", content=body, headers=headers, timeout=30
    )


def refusal(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_every_refusal_of_a_batch(system: System) -> None:
    cid = system.new_campaign()["id"]
    device_id, key = register(system)
    now = datetime.now(UTC)
    body = batch(1, [entry(system, cid, "voter-1", ["c01"])])
    signed = signed_headers(device_id, key, body, now)
    stranger = signed_headers("no-such-kiosk", key, body, now)
    assert refusal(upload(system, body, stranger)) == (401, "unknown_device")
    unsigned = {k: v for k, v in signed.items() if k != "X-Kiosk-Signature"}
    assert refusal(upload(system, body, unsigned)) == (401, "missing_signature")
    forged = signed_headers(device_id, Ed25519PrivateKey.generate(), body, now)
    assert refusal(upload(system, body, forged)) == (401, "bad_signature")
    tampered = body.replace(b'"c01"', b'"c02"')
    assert refusal(upload(system, tampered, signed)) == (401, "bad_signature")
    old = signed_headers(device_id, key, body, now - timedelta(minutes=6))
    assert refusal(upload(system, body, old)) == (401, "stale_timestamp")
    ahead = signed_headers(device_id, key, body, now + timedelta(minutes=6))
    assert refusal(upload(system, body, ahead)) == (401, "stale_timestamp")
    junk = b'{"batch_id": "x"}'
    junk_signed = signed_headers(device_id, key, junk, now)
    assert refusal(upload(system, junk, junk_signed)) == (400, "bad_batch_id")

    first = upload(system, body, signed)
    assert first.status_code == 200 and first.json()["results"][0]["status"] == "accepted"
    again = upload(system, body, signed_headers(device_id, key, body, datetime.now(UTC)))
    assert again.status_code == 200 and again.content == first.content
    lower = batch(1, [entry(system, cid, "voter-2", ["c01"])])
    stale = upload(system, lower, signed_headers(device_id, key, lower, datetime.now(UTC)))
    assert refusal(stale) == (409, "stale_seq")

    revoke = httpx.delete(
        f"{system.ingest}/v1/admin/kiosks/{device_id}", headers=system.admin_headers()
    )
    assert revoke.status_code == 200
    replay = upload(system, body, signed_headers(device_id, key, body, datetime.now(UTC)))
    assert refusal(replay) == (401, "device_revoked")  # revoked is final, even for replays


def test_each_ballot_gets_its_own_answer_and_only_valid_ones_are_counted(system: System) -> None:
    campaign = system.new_campaign()
    cid = campaign["id"]
    device_id, key = register(system)
    before_open = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    in_future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    cases = {
        "ok": entry(system, cid, "v-ok", ["c01", "c02"]),
        "limit": entry(system, cid, "v-ok", ["c03"]),  # the same voter again: the tally refuses it
        "too_many_selections": entry(
            system, cid, "v1", [c["id"] for c in campaign["candidates"][:11]]
        ),
        "too_few_selections": entry(system, cid, "v2", []),
        "unknown_candidate": entry(system, cid, "v3", ["c99"]),
        "duplicate_selection": entry(system, cid, "v4", ["c01", "c01"]),
        "unknown_campaign": entry(system, "no-such-campaign", "v5", ["c01"]),
        "bad_voter_ref": {**entry(system, cid, "v6", ["c01"]), "voter_ref": "13800138000"},
        "campaign_not_open": entry(system, cid, "v7", ["c01"], cast_at=before_open),
        "cast_in_future": entry(system, cid, "v8", ["c01"], cast_at=in_future),
    }
    body = batch(1, list(cases.values()))
    response = upload(system, body, signed_headers(device_id, key, body, datetime.now(UTC)))
    assert response.status_code == 200
    results = {r["ballot_id"]: r for r in response.json()["results"]}
    for expected, sent in cases.items():
        result = results[sent["ballot_id"]]
        if expected in ("ok", "limit"):
            assert (result["status"], result["reason"]) == ("accepted", None), expected
        else:
            assert (result["status"], result["reason"]) == ("rejected", expected)

    def published() -> dict[str, Any] | None:
        got = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5)
        ok = got.status_code == 200 and got.json()["ballots_counted"] == 1
        return got.json() if ok else None

    snapshot = eventually(published, timeout=60, what="the kiosk ballot published")
    votes = {c["id"]: c["by_channel"]["kiosk"] for c in snapshot["candidates"] if c["votes"]}
    assert votes == {"c01": 1, "c02": 1}
    assert snapshot["ballots_rejected"] == {"limit_exceeded": 1}
    fate = httpx.get(f"{system.ingest}/v1/ballots/{cases['limit']['ballot_id']}").json()
    assert (fate["status"], fate["reason"]) == ("rejected", "limit_exceeded")
