"""A pod network on one machine: a bridge with the host's address, and for each pod a
network namespace joined to it by a veth pair, with an address of its own.

Names carry a run id, so parallel or crashed runs never collide; `close` removes every
namespace and link this run made, whatever state the run ended in.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import subprocess
from dataclasses import dataclass, field

IFNAME_MAX = 15  # Linux: IFNAMSIZ - 1


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _used_networks() -> list[ipaddress.IPv4Network]:
    routes = ip("-4", "route", "show", "table", "all").stdout.split()
    found = []
    for word in routes:
        with contextlib.suppress(ValueError):
            if "/" in word or word.count(".") == 3:
                found.append(ipaddress.IPv4Network(word, strict=False))
    return found


PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def _free_subnet() -> ipaddress.IPv4Network:
    """A private /24 that no route of this machine touches (picked at random, so that
    parallel runs rarely even try the same one)."""
    used = _used_networks()
    for _ in range(300):
        private = ipaddress.IPv4Network(random.choice(PRIVATE_RANGES))
        start = private.network_address + 256 * random.randrange(1, private.num_addresses // 256)
        candidate = ipaddress.IPv4Network(f"{start}/24")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise RuntimeError(f"no free /24 in {PRIVATE_RANGES} for the pod network")


@dataclass
class Network:
    """The bridge (host side) and the pods' namespaces."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    subnet: ipaddress.IPv4Network = field(default_factory=_free_subnet)
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    _next_host: int = 2
    _next_service: int = 200

    @property
    def bridge(self) -> str:
        return f"vsr{self.run_id}br"

    @property
    def host_ip(self) -> str:
        """The host's address on the pod network: where the broker and Postgres listen."""
        return str(self.subnet.network_address + 1)

    def open(self) -> None:
        if os.geteuid() != 0:
            raise PermissionError("the rehearsal makes network namespaces: run it as root")
        ip("link", "add", self.bridge, "type", "bridge")
        self.links.append(self.bridge)
        ip("addr", "add", f"{self.host_ip}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def service_ip(self) -> str:
        """A ClusterIP: an extra address of the host on the bridge."""
        address = str(self.subnet.network_address + self._next_service)
        self._next_service += 1
        ip("addr", "add", f"{address}/32", "dev", self.bridge)
        return address

    def add_pod(self, name: str) -> tuple[str, str]:
        """A namespace with one interface, eth0, on the bridge; returns (namespace, address)."""
        index = self._next_host
        self._next_host += 1
        if index >= 200:
            raise RuntimeError("pod network full")
        namespace = f"vsr-{self.run_id}-{name}"
        host_end, pod_end = f"vsr{self.run_id}h{index}", f"vsr{self.run_id}p{index}"
        assert len(host_end) <= IFNAME_MAX and len(pod_end) <= IFNAME_MAX
        address = str(self.subnet.network_address + index)
        ip("netns", "add", namespace)
        self.namespaces.append(namespace)
        ip("link", "add", host_end, "type", "veth", "peer", "name", pod_end)
        self.links.append(host_end)
        ip("link", "set", pod_end, "netns", namespace)
        ip("link", "set", host_end, "master", self.bridge)
        ip("link", "set", host_end, "up")
        ip("-n", namespace, "link", "set", pod_end, "name", "eth0")
        ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", namespace, "route", "add", "default", "via", self.host_ip)
        return namespace, address

    def listeners(self, namespace: str) -> list[tuple[str, int]]:
        """The TCP sockets listening in a namespace, as (address, port)."""
        out = subprocess.run(
            ["ip", "netns", "exec", namespace, "ss", "-ltnH"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found = []
        for line in out.splitlines():
            local = line.split()[3]
            address, _, port = local.rpartition(":")
            found.append((address.strip("[]"), int(port)))
        return found

    def close(self) -> None:
        """Removes every namespace and link of this run; never raises."""
        for namespace in reversed(self.namespaces):
            ip("netns", "del", namespace, check=False)
        for link in reversed(self.links):
            ip("link", "del", link, check=False)
        self.namespaces.clear()
        self.links.clear()
