"""One person is one voter on every channel: a phone that voted on the web (OTP login) and
then at a kiosk, in a campaign of one ballot per voter, gets its kiosk ballot refused as
`limit_exceeded` by the running system, whatever digits the kiosk's keyboard typed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kiosk_agent.keys import public_key_text
from services.kiosk_agent.uploader import signed_headers
from tests.support.kiosk_refs import system_sealer
from tests.support.system import System
from tests.support.waiting import eventually

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def fate(system: System, ballot_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = httpx.get(f"{system.ingest}/v1/ballots/{ballot_id}", timeout=5).json()
    return body if body.get("status") in ("counted", "rejected") else None


def web_vote(system: System, cid: str, phone: str) -> str:
    with httpx.Client(base_url=system.ingest, timeout=10) as client:
        assert client.post("/v1/otp", json={"phone": phone}).status_code == 202
        code = system.sms_code(phone)
        login = client.post("/v1/otp/verify", json={"phone": phone, "code": code})
        assert login.status_code == 200, login.text
        cast = client.post(
            f"/v1/campaigns/{cid}/ballots",
            json={"selections": ["c01"]},
            headers={"Authorization": f"Bearer {login.json()['token']}"},
        )
        assert cast.status_code == 202, cast.text
        return str(cast.json()["ballot_id"])


def kiosk_vote(system: System, cid: str, typed: str) -> str:
    device_id, key = f"hall-{uuid.uuid4().hex[:8]}", Ed25519PrivateKey.generate()
    registered = httpx.post(
        f"{system.ingest}/v1/admin/kiosks",
        json={"device_id": device_id, "public_key": public_key_text(key)},
        headers=system.admin_headers(),
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    ballot_id = str(uuid.uuid4())
    ballot = {
        "ballot_id": ballot_id,
        "campaign_id": cid,
        "voter_ref": system_sealer(system).voter_ref(cid, typed),
        "selections": ["c02"],
        "cast_at": datetime.now(UTC).isoformat(),
    }
    body = orjson.dumps({"batch_id": str(uuid.uuid4()), "seq": 1, "ballots": [ballot]})
    response = httpx.post(
        f"{system.ingest}/v1/kiosk/batches",
        content=body,
        headers=signed_headers(device_id, key, body, datetime.now(UTC)),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "accepted"
    return ballot_id


def test_a_phone_that_voted_on_the_web_is_refused_at_a_kiosk(system: System) -> None:
    cid = system.new_campaign(limit={"per_voter": 1, "period": "campaign"})["id"]
    national = f"137{uuid.uuid4().int % 10**8:08d}"
    web_ballot = web_vote(system, cid, f"+86{national}")
    assert (
        eventually(lambda: fate(system, web_ballot), timeout=30, what="the web ballot")["status"]
        == "counted"
    )

    typed = f"{national[:3]} {national[3:7]} {national[7:]}".translate(FULLWIDTH)
    kiosk_ballot = kiosk_vote(system, cid, typed)  # the same phone, fullwidth, no +86
    assert eventually(lambda: fate(system, kiosk_ballot), timeout=30, what="the kiosk ballot") == {
        "ballot_id": kiosk_ballot,
        "status": "rejected",
        "reason": "limit_exceeded",
    }

    def published() -> dict[str, Any] | None:
        got = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5).json()
        return got if got.get("ballots_rejected") else None

    snapshot = eventually(published, timeout=30, what="the refusal published")
    assert snapshot["ballots_counted"] == 1
    assert snapshot["ballots_rejected"] == {"limit_exceeded": 1}
