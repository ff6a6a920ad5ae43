"""The client's address behind a load balancer: X-Forwarded-For, from trusted peers only.

Behind an ingress every request comes from the proxy's address, so per-network rate and
velocity limits would meter the proxy, not the voters. From a peer inside
VOTESTREAM_TRUSTED_PROXIES, the client is the right-most X-Forwarded-For hop that is not
itself a trusted proxy; from any other peer the header is ignored (anyone can send it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from services.runtime.http import Handler

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trust_forwarded_for(trusted: Iterable[str]) -> Middleware | None:
    """A middleware that sets `request.remote` to the forwarded client, or None if no proxy
    is trusted."""
    networks = tuple(ipaddress.ip_network(n, strict=False) for n in trusted)
    if not networks:
        return None

    @web.middleware
    async def forwarded_client(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _inside(request.remote, networks):
            client = _client(request.headers.getall("X-Forwarded-For", []), networks)
            if client is not None:
                request = request.clone(remote=client)
        return await handler(request)

    return forwarded_client


def _client(headers: list[str], trusted: tuple[Network, ...]) -> str | None:
    hops = [hop.strip() for header in headers for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _valid(hop):
            return None  # a malformed chain: keep the peer's own address
        if not _inside(hop, trusted):
            return hop
    return None


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _inside(address: str | None, networks: tuple[Network, ...]) -> bool:
    if address is None or not _valid(address):
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in networks)
