"""The bare handler measured by wrk (a C client) when it is installed: how far the Python
client, shared by every other row, holds the bare ceiling down. Reported beside, never used
in the ratios (those compare servers under the same client)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from services.runtime.processes import free_port, port_open, stop, wait_until

BODY = '{"selections": ["c01", "c05", "c09"], "ballot_id": "6f1c0b4e-8a57-4c43-9d0e-1f2a3b4c5d6e"}'
SCRIPT = f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{BODY}'
"""


def bare_with_wrk(clients: int, seconds: float) -> dict[str, Any] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.servers", "bare", "--port", str(port)])
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, "bench server bare")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(SCRIPT)
        url = f"http://127.0.0.1:{port}/v1/campaigns/bench/ballots"
        argv = [wrk, "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "-s", lua.name, url]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
        Path(lua.name).unlink()
    finally:
        stop(server, timeout=5)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return {"rate": float(rate.group(1)) if rate else 0.0, "p50_ms": _ms(p50), "p99_ms": _ms(p99)}


def _ms(match: re.Match[str] | None) -> float:
    if match is None:
        return 0.0
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale
