"""Runs one comparison server and the hammer against it, each in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

from services.runtime.processes import free_port, port_open, stop, wait_until


def best_of(runs: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The fastest of a few runs: other work on a shared machine only ever slows a run."""
    results = [measure() for _ in range(runs)]
    return max(results, key=lambda r: float(r["rate"]))


def serve_and_hammer(
    server: list[str], clients: int, seconds: float, stats: bool = False
) -> dict[str, Any]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.servers", *server, "--port", str(port)]
    proc = subprocess.Popen(argv)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, f"bench server {server[0]}")
        url = f"http://127.0.0.1:{port}/v1/campaigns/bench/ballots"
        result = hammer(url, clients, seconds)
        if stats:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
                result["server"] = json.loads(r.read())
        return result
    finally:
        stop(proc, timeout=5)  # a naive server stuck in lock waits gets killed


def hammer(url: str, clients: int, seconds: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.hammer", url, "--clients", str(clients)]
    done = subprocess.run(
        [*argv, "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
