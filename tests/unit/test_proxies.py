"""Behind a trusted load balancer the client is the forwarded address; otherwise the peer."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.domain.errors import SettingsError
from services.runtime.proxies import trust_forwarded_for
from services.runtime.settings import Settings


async def remote(request: web.Request) -> web.Response:
    return web.Response(text=request.remote or "")


async def seen_as(trusted: tuple[str, ...], forwarded: str | None) -> str:
    middleware = trust_forwarded_for(trusted)
    app = web.Application(middlewares=[middleware] if middleware else [])
    app.router.add_get("/", remote)
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/", headers=headers)
        return await response.text()


async def test_a_trusted_proxy_forwards_the_right_most_untrusted_hop() -> None:
    chain = "198.51.100.9, 203.0.113.7, 10.0.0.5"  # spoofed, client, inner proxy
    assert await seen_as(("127.0.0.0/8", "10.0.0.0/8"), chain) == "203.0.113.7"


async def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    assert await seen_as(("10.0.0.0/8",), "203.0.113.7") == "127.0.0.1"
    assert trust_forwarded_for(()) is None


async def test_a_malformed_chain_keeps_the_peer_address() -> None:
    assert await seen_as(("127.0.0.0/8",), "203.0.113.7, not-an-ip") == "127.0.0.1"
    assert await seen_as(("127.0.0.0/8",), "") == "127.0.0.1"


def test_a_bad_trusted_network_stops_the_start_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="VOTESTREAM_TRUSTED_PROXIES"):
        Settings.from_env({"VOTESTREAM_TRUSTED_PROXIES": "10.0.0.0/8, nonsense"})
    parsed = Settings.from_env({"VOTESTREAM_TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8"})
    assert parsed.trusted_proxies == ("10.0.0.0/8", "fd00::/8")
