"""A whole votestream started exactly as `votestream up` starts it, on free ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml

from services.ingest.otp import phone_key
from services.ingest.sms import OUTBOX
from services.runtime.postgres_home import discard_cluster
from services.runtime.processes import free_port
from services.runtime.settings import read_secrets
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "campaigns" / "zibo-2021-b2.yaml"


@dataclass
class System:
    proc: subprocess.Popen[str]
    data_dir: Path
    ports: dict[str, int]
    output: list[str] = field(default_factory=list)

    @property
    def ingest(self) -> str:
        return f"http://127.0.0.1:{self.ports['INGEST']}"

    @property
    def publish(self) -> str:
        return f"http://127.0.0.1:{self.ports['PUBLISH']}"

    @property
    def tally(self) -> str:
        return f"http://127.0.0.1:{self.ports['TALLY']}"

    @property
    def env(self) -> dict[str, str]:
        """What a CLI command needs to reach this system."""
        extra = {f"VOTESTREAM_{k}_PORT": str(v) for k, v in self.ports.items()}
        extra["VOTESTREAM_PUBLIC_BASE_URL"] = self.ingest  # as `up` gives its own ingest
        return {**os.environ, **extra, "VOTESTREAM_DATA_DIR": str(self.data_dir)}

    def secret(self, name: str) -> str:
        return read_secrets(self.data_dir)[f"VOTESTREAM_{name.upper()}"]

    def sms_code(self, phone: str) -> str:
        """The last login code the dev SMS sender wrote for this phone (never the number)."""
        key = phone_key(self.secret("identity_key").encode(), phone)

        def find() -> str | None:
            path = self.data_dir / OUTBOX
            lines = path.read_text().splitlines() if path.exists() else []
            codes = [m["code"] for m in map(json.loads, lines) if m["phone_key"] == key]
            return codes[-1] if codes else None

        return eventually(find, timeout=10, what="the login code in the dev outbox")

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret('admin_token')}"}

    def voter_token(self, sub: str, phone: str | None = None, ttl: int = 600) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl}
        if phone:
            claims["phone"] = phone
        return jwt.encode(claims, self.secret("web_jwt_secret"), algorithm="HS256")

    def new_campaign(self, **overrides: Any) -> dict[str, Any]:
        """A fresh campaign (the demo's candidates), open now, with its own id."""
        data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
        now = datetime.now(UTC).replace(microsecond=0)
        data.update(
            id=f"t-{uuid.uuid4().hex[:10]}",
            opens_at=(now - timedelta(minutes=1)).isoformat(),
            closes_at=(now + timedelta(days=1)).isoformat(),
        )
        data.update(overrides)
        response = httpx.put(
            f"{self.ingest}/v1/admin/campaigns/{data['id']}",
            json=data,
            headers=self.admin_headers(),
            timeout=10,
        )
        response.raise_for_status()
        return dict(response.json())


def start_system(
    data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 120
) -> System:
    ports = {name: free_port() for name in ("INGEST", "PUBLISH", "TALLY", "KAFKA", "PG")}
    env = {
        **os.environ,
        **{f"VOTESTREAM_{k}_PORT": str(v) for k, v in ports.items()},
        "VOTESTREAM_DATA_DIR": str(data_dir),
        "VOTESTREAM_SNAPSHOT_INTERVAL": "0.5",
        **(extra_env or {}),
    }
    for key in ("VOTESTREAM_KAFKA_BOOTSTRAP", "VOTESTREAM_DATABASE_URL"):
        env.pop(key, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services", "up", "--demo", str(DEMO)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    system = System(proc, data_dir, ports)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        system.output.append(line.rstrip())
        if line.strip() == "votestream ready":
            return system
        if time.monotonic() > deadline:
            break
    stop_system(system)
    raise RuntimeError("votestream up did not get ready:\n" + "\n".join(system.output[-40:]))


def stop_system(system: System, timeout: float = 90) -> int:
    if system.proc.poll() is None:
        system.proc.send_signal(signal.SIGTERM)
    out, _ = system.proc.communicate(timeout=timeout)
    system.output.extend(out.splitlines())
    discard_cluster(system.data_dir / "postgres")  # relocated under root: not in tmp_path
    return system.proc.returncode


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One whole votestream for the test session; each test makes its own campaign."""
    running = start_system(tmp_path_factory.mktemp("votestream"))
    yield running
    code = stop_system(running)
    assert code == 0, "\n".join(running.output[-30:])
