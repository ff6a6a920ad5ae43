"""A `votestream up` of a test's own, its output read as it comes, and every process it
started watched, so a test can prove none is left behind after it exits."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import psutil

from services.runtime.processes import free_port
from services.runtime.settings import read_secrets
from tests.support.system import DEMO, REPO

PORTS = ("INGEST", "PUBLISH", "TALLY", "KAFKA", "PG")
DEMO_ID = "zibo-2021-b2"  # the demo campaign `up --demo` loads, open from now


def up_env(data_dir: Path, bootstrap: str | None = None, dsn: str | None = None) -> dict[str, str]:
    """`up` on free ports; with `bootstrap`/`dsn` it uses them instead of embedded ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESTREAM_")}
    env.update({f"VOTESTREAM_{k}_PORT": str(free_port()) for k in PORTS})
    env["VOTESTREAM_DATA_DIR"] = str(data_dir)
    env["VOTESTREAM_SNAPSHOT_INTERVAL"] = "0.5"
    env["VOTESTREAM_PARTITIONS"] = "4"
    if bootstrap:
        env["VOTESTREAM_KAFKA_BOOTSTRAP"] = bootstrap
    if dsn:
        env["VOTESTREAM_DATABASE_URL"] = dsn
    return env


@dataclass
class UpRun:
    """One `votestream up` process; its lines land in `output` as they are printed."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    output: list[str] = field(default_factory=list)
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create_time, descendants
    groups: set[int] = field(default_factory=set)  # their process groups
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, env: dict[str, str]) -> UpRun:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services", "up", "--demo", str(DEMO)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        run = cls(proc, env)
        for target in (run._read, run._watch):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            run._threads.append(thread)
        return run

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())

    def _watch(self) -> None:
        """Records every descendant (and its process group) while `up` runs: children start
        their own sessions, and orphans lose their parent link once `up` is gone."""
        try:
            me = psutil.Process(self.proc.pid)
        except psutil.NoSuchProcess:
            return
        while self.proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                for child in me.children(recursive=True):
                    with contextlib.suppress(psutil.Error, OSError):  # gone meanwhile
                        if child.pid not in self.seen:
                            self.seen[child.pid] = child.create_time()
                            group = os.getpgid(child.pid)
                            if group != os.getpgrp():  # a short tool run in up's own group
                                self.groups.add(group)
            time.sleep(0.01)

    @property
    def data_dir(self) -> Path:
        return Path(self.env["VOTESTREAM_DATA_DIR"])

    def has(self, text: str) -> bool:
        return any(text in line for line in self.output)

    def wait_for_line(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.has(text):
                return True
            time.sleep(0.02)
        return self.has(text)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()

    def leftovers(self) -> list[str]:
        """Processes of this stack still alive: a descendant seen while `up` ran, a member of
        one of their process groups, or any process whose environment names this data dir."""
        left = []
        marker = str(self.data_dir)
        for proc in psutil.process_iter(["pid", "name", "create_time", "status"]):
            info = proc.info
            if info["status"] == psutil.STATUS_ZOMBIE:
                continue
            with contextlib.suppress(psutil.Error, OSError):
                ours = self.seen.get(info["pid"]) == info["create_time"]
                ours = ours or os.getpgid(info["pid"]) in self.groups
                if not ours and info["pid"] != os.getpid():
                    ours = proc.environ().get("VOTESTREAM_DATA_DIR") == marker
                if ours:
                    left.append(f"{info['pid']} {info['name']}")
        return left

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.output[-n:])


def cast(run: UpRun, n: int) -> list[uuid.UUID]:
    """`n` web ballots for the demo campaign; returns the ids answered 202."""
    secrets = read_secrets(run.data_dir)
    port = run.env["VOTESTREAM_INGEST_PORT"]
    accepted = []
    with httpx.Client(timeout=10) as http:
        for i in range(n):
            now = int(time.time())
            claims = {"sub": f"sig-{uuid.uuid4().hex[:8]}-{i}", "iat": now, "exp": now + 600}
            token = jwt.encode(claims, secrets["VOTESTREAM_WEB_JWT_SECRET"], algorithm="HS256")
            ballot_id = uuid.uuid4()
            response = http.post(
                f"http://127.0.0.1:{port}/v1/campaigns/{DEMO_ID}/ballots",
                json={"selections": ["c01", "c02"], "ballot_id": str(ballot_id)},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 202, response.text
            accepted.append(ballot_id)
    return accepted
