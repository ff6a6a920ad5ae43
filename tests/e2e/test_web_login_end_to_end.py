"""The web channel on the running system: phone login, idempotent retries, page, QR, OpenAPI."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import httpx
import pytest
import segno

from tests.support.system import System
from tests.support.waiting import eventually


@pytest.fixture
def client(system: System) -> Iterator[httpx.Client]:
    """A client from its own loopback network (127.1.N.0/24): its own per-IP rate limits."""
    network = uuid.uuid4().int % 250 + 1
    transport = httpx.HTTPTransport(local_address=f"127.1.{network}.1")
    with httpx.Client(base_url=system.ingest, transport=transport, timeout=10) as http:
        yield http


def log_in(system: System, client: httpx.Client, phone: str) -> str:
    assert client.post("/v1/otp", json={"phone": phone}).status_code == 202
    answer = client.post("/v1/otp/verify", json={"phone": phone, "code": system.sms_code(phone)})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def fate(system: System, ballot_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{system.ingest}/v1/ballots/{ballot_id}", timeout=5)
    body: dict[str, Any] = response.json()
    return body if body.get("status") in ("counted", "rejected") else None


def test_a_phone_login_votes_as_the_phone_whatever_token_carries_it(
    system: System, client: httpx.Client
) -> None:
    cid = system.new_campaign()["id"]
    phone = f"+86137{uuid.uuid4().int % 10**8:08d}"
    tokens = [
        log_in(system, client, phone),
        system.voter_token("another-login", phone=phone),  # the site's own login, same phone
    ]
    ballots = []
    for token in tokens:
        response = client.post(
            f"/v1/campaigns/{cid}/ballots",
            json={"selections": ["c02", "c04"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 202, response.text
        ballots.append(response.json()["ballot_id"])
        eventually(lambda: fate(system, ballots[-1]), timeout=30, what="the ballot's fate")
    assert [fate(system, b) for b in ballots] == [
        {"ballot_id": ballots[0], "status": "counted", "reason": None},
        {"ballot_id": ballots[1], "status": "rejected", "reason": "limit_exceeded"},
    ]


def test_a_retried_idempotency_key_is_counted_once(system: System, client: httpx.Client) -> None:
    cid = system.new_campaign()["id"]
    headers = {
        "Authorization": f"Bearer {system.voter_token('retrying-voter')}",
        "Idempotency-Key": "page-load-7f3a",
    }
    answers = [
        client.post(f"/v1/campaigns/{cid}/ballots", json={"selections": ["c07"]}, headers=headers)
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [202] * 3
    assert answers[0].json() == answers[1].json() == answers[2].json()

    def results() -> dict[str, Any] | None:
        response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5)
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["ballots_counted"] else None

    snapshot = eventually(results, timeout=30, what="the ballot published")
    assert snapshot["ballots_counted"] == 1 and snapshot["ballots_rejected"] == {}
    votes = {c["id"]: c["votes"] for c in snapshot["candidates"]}
    assert votes["c07"] == 1 and sum(votes.values()) == 1


def test_the_vote_page_and_its_qr_code_are_served(system: System, client: httpx.Client) -> None:
    cid = system.new_campaign()["id"]
    page = client.get(f"/vote/{cid}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    svg = client.get(f"/vote/{cid}/qr.svg")
    expected = io.BytesIO()
    segno.make(f"{system.ingest}/vote/{cid}", error="m").save(
        expected, kind="svg", scale=8, border=4
    )
    assert svg.status_code == 200 and svg.content == expected.getvalue()
    assert client.get(f"/vote/{cid}/qr.png").content.startswith(b"\x89PNG")


def test_the_openapi_document_is_served(system: System, client: httpx.Client) -> None:
    kept = json.loads(files("schemas").joinpath("openapi.ingest.json").read_text("utf-8"))
    assert client.get("/openapi.json").json() == kept
