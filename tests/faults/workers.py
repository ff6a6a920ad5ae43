"""Tally workers as real processes (`python -m services tally`), to kill and restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.runtime.processes import free_port
from tests.support.system import REPO
from tests.support.waiting import eventually


@dataclass
class Workers:
    """Named tally worker processes of one consumer group against one broker and database."""

    bootstrap: str
    dsn: str
    group: str
    base: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started: dict[str, datetime] = field(default_factory=dict)

    def start(self, name: str, *, group: str | None = None) -> None:
        port = free_port()
        data_dir = self.base / name
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "VOTESTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
            "VOTESTREAM_DATABASE_URL": self.dsn,
            "VOTESTREAM_TALLY_GROUP": group or self.group,
            "VOTESTREAM_TALLY_PORT": str(port),
            "VOTESTREAM_DATA_DIR": str(data_dir),
        }
        with open(self.base / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services", "tally"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.ports[name] = port
        self.started[name] = datetime.now(UTC)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        eventually(lambda: self._ready(name), timeout, f"tally worker {name} ready")

    def _ready(self, name: str) -> bool:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"tally {name} exited with {proc.returncode}: {self.log(name)}")
        try:
            url = f"http://127.0.0.1:{self.ports[name]}/readyz"
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def metric(self, name: str, metric: str) -> float:
        """The sum of one metric's samples scraped from a worker."""
        text = httpx.get(f"http://127.0.0.1:{self.ports[name]}/metrics", timeout=5).text
        pattern = re.compile(rf"^{re.escape(metric)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
        return sum(float(v) for v in pattern.findall(text))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        return proc.wait(timeout=60)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(errors="replace")[-3000:]
