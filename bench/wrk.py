"""The bare handler measured by wrk (a C client) when it is installed: how far the Python
client, shared by every other row, holds the bare ceiling down. Reported beside, never used
in the ratios (those compare servers under the same client)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt

from services.runtime.processes import free_port, port_open, stop, wait_until

BODY = '{"selections": ["c01", "c05", "c09"], "ballot_id": "6f1c0b4e-8a57-4c43-9d0e-1f2a3b4c5d6e"}'
SCRIPT = f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{BODY}'
"""


# votestream's web ballots: a fresh voter token and ballot_id per request (tokens made here;
# more than wrk sends in a run at this machine's rates, so every 202 is a voter's first ballot
# and the end-to-end row can expect each to be counted)
TOKENS = 50_000
# wrk's Lua starts its random numbers from the same seed every run: each run seeds its own,
# or a second run against the same system would send the first run's ballot_ids again
VOTESTREAM_SCRIPT = """tokens = {%s}
math.randomseed(%d)
n = 0
request = function()
  n = n + 1
  local id = string.format("%%08x-%%04x-4%%03x-8%%03x-%%04x%%04x%%04x", math.random(0, 2147483647),
    math.random(0, 65535), math.random(0, 4095), math.random(0, 4095),
    math.random(0, 65535), math.random(0, 65535), math.random(0, 65535))
  local body = '{"selections": ["c01", "c05", "c09"], "ballot_id": "' .. id .. '"}'
  local headers = {["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer " .. tokens[(n %% #tokens) + 1]}
  return wrk.format("POST", nil, headers, body)
end
"""


def bare_with_wrk(clients: int, seconds: float) -> dict[str, Any] | None:
    if shutil.which("wrk") is None:
        return None
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.servers", "bare", "--port", str(port)])
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, "bench server bare")
        return run_wrk(
            f"http://127.0.0.1:{port}/v1/campaigns/bench/ballots", SCRIPT, clients, seconds
        )
    finally:
        stop(server, timeout=5)


def ingest_with_wrk(
    ingest: str, campaign_id: str, secret: str, clients: int, seconds: float
) -> dict[str, Any] | None:
    """Ingest's 202s under wrk, each a distinct voter's first ballot
    (`bench.endtoend.counted_after_wrk` follows them to the published count)."""
    if shutil.which("wrk") is None:
        return None
    now = int(time.time())
    tokens = [
        jwt.encode({"sub": f"wrk-{now}-{i}", "iat": now, "exp": now + 600}, secret, "HS256")
        for i in range(TOKENS)
    ]
    seed = secrets.randbelow(2**31)
    script = VOTESTREAM_SCRIPT % (", ".join(f'"{t}"' for t in tokens), seed)
    return run_wrk(f"{ingest}/v1/campaigns/{campaign_id}/ballots", script, clients, seconds)


def run_wrk(url: str, script: str, clients: int, seconds: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        argv = ["wrk", "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "-s", lua.name]
        out = subprocess.run(
            [*argv, url], capture_output=True, text=True, timeout=seconds + 30
        ).stdout
    finally:
        Path(lua.name).unlink()
    sent = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rate": float(rate.group(1)) if rate else 0.0,
        "p50_ms": _ms(p50),
        "p99_ms": _ms(p99),
        "requests": int(sent.group(1)) if sent else 0,
        "connections": clients,
        "non_2xx": int(bad.group(1)) if bad else 0,
    }


def _ms(match: re.Match[str] | None) -> float:
    if match is None:
        return 0.0
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale
