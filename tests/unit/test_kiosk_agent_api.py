"""The kiosk agent's local API takes ballots only from the voting screen: the install's
secret, JSON, and no foreign Origin; what the voter typed is checked and sealed at once."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.domain.voter_refs import server_sealing_key
from services.kiosk_agent.identity import Sealer
from services.kiosk_agent.local_api import (
    SECRET_FILE,
    SECRET_HEADER,
    create_local_app,
    local_api_secret,
)
from services.kiosk_agent.queue import KioskQueue
from services.kiosk_agent.uploader import Uploader

BALLOT = {"campaign_id": "camp", "voter": "13800138000", "selections": ["c01"]}


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], str, KioskQueue]]:
    queue = KioskQueue(tmp_path / "q.db")
    session = aiohttp.ClientSession()
    uploader = Uploader(queue, session, "http://127.0.0.1:9", "k1", Ed25519PrivateKey.generate())
    secret = local_api_secret(tmp_path)
    sealer = Sealer(server_sealing_key(b"pepper").public_key())
    app = create_local_app(queue, uploader, sealer, secret, frozenset({"http://screen.local"}))
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, secret, queue
    finally:
        await client.close()
        await session.close()
        queue.close()


async def post(client: TestClient[Any, Any], **headers: str) -> tuple[int, Any]:
    response = await client.post("/ballots", json=BALLOT, headers=headers)
    return response.status, await response.json()


async def test_the_voting_screen_with_the_secret_casts(agent: Any) -> None:
    client, secret, queue = agent
    status, body = await post(client, **{SECRET_HEADER: secret})
    assert status == 201 and body["status"] == "queued"
    assert queue.summary()["ballots"] == {"queued": 1}


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "bad_agent_secret"),
        ({SECRET_HEADER: "guessed"}, 401, "bad_agent_secret"),
        ({"Origin": "http://evil.example"}, 403, "foreign_origin"),
        ({"Origin": "null"}, 403, "foreign_origin"),  # a sandboxed frame or a file: page
    ],
)
async def test_without_the_secret_or_from_a_foreign_origin_nothing_is_cast(
    agent: Any, headers: dict[str, str], status: int, code: str
) -> None:
    client, secret, queue = agent
    if "Origin" in headers:
        headers = {**headers, SECRET_HEADER: secret}  # even with the secret
    answered, body = await post(client, **headers)
    assert (answered, body["error"]["code"]) == (status, code)
    assert queue.summary()["ballots"] == {}


async def test_a_form_post_that_is_not_json_is_refused(agent: Any) -> None:
    client, secret, queue = agent
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = await client.post(
            "/ballots",
            data=b'{"campaign_id": "camp", "voter": "13800138000", "selections": ["c01"]}',
            headers={SECRET_HEADER: secret, "Content-Type": content_type},
        )
        assert response.status == 415
        assert (await response.json())["error"]["code"] == "json_required"
    assert queue.summary()["ballots"] == {}


async def test_the_record_needs_the_secret_too_and_health_does_not(agent: Any) -> None:
    client, secret, _ = agent
    assert (await client.get("/status")).status == 401
    assert (await client.get("/status", headers={SECRET_HEADER: secret})).status == 200
    assert (await client.get("/healthz")).status == 200
    allowed = {SECRET_HEADER: secret, "Origin": "http://screen.local"}
    assert (await post(client, **allowed))[0] == 201


async def test_a_mistyped_id_number_is_refused_with_its_reason(agent: Any) -> None:
    client, secret, queue = agent
    body = {**BALLOT, "voter": "110105194912310021"}
    response = await client.post("/ballots", json=body, headers={SECRET_HEADER: secret})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_id_check_digit"
    assert queue.summary()["ballots"] == {}


def test_the_secret_is_made_once_readable_only_by_the_agent(tmp_path: Path) -> None:
    first = local_api_secret(tmp_path)
    assert len(first) >= 40 and local_api_secret(tmp_path) == first
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
