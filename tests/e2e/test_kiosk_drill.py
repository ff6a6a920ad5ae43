"""The offline drill: a kiosk agent (a real process) takes 500 ballots while the server is
unreachable, is killed with SIGKILL twice on the way, comes back, and once the server is
reachable every ballot is counted exactly once, equal to the agent's own record.

The server's unreachability is a closed TCP port in front of the running system (the
kiosk's network is down); "the server comes up" is that port starting to relay to ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.kiosk_agent.local_api import SECRET_FILE, SECRET_HEADER
from services.runtime.processes import free_port
from tests.support.system import REPO, System
from tests.support.waiting import eventually

BALLOTS = 500
KILL_AT = (150, 340)


class Relay:
    """A TCP relay to the ingest port, in its own thread, started only when asked."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        serve = asyncio.start_server(self._pipe_both, "127.0.0.1", self.port)
        asyncio.run_coroutine_threadsafe(serve, self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _pipe_both(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


class Agent:
    """`votestream kiosk agent` as a child process that can be killed and started again."""

    def __init__(self, argv: list[str], port: int, log: Path, data: Path) -> None:
        self.argv, self.port, self.log, self.data = argv, port, log, data
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=out, cwd=REPO)
        eventually(self._answers, timeout=30, what="the kiosk agent up")

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-2000:]
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    @property
    def headers(self) -> dict[str, str]:
        """What the voting screen sends: the install's secret, made at the agent's first start."""
        return {SECRET_HEADER: (self.data / SECRET_FILE).read_text().strip()}

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/status", headers=self.headers, timeout=5).json())


def votestream(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def relay(system: System) -> Iterator[Relay]:
    running = Relay(free_port(), system.ports["INGEST"])
    yield running
    running.stop()


def test_offline_kiosk_loses_and_duplicates_nothing(
    system: System, relay: Relay, tmp_path: Path
) -> None:
    campaign = system.new_campaign()
    cid, candidates = campaign["id"], [c["id"] for c in campaign["candidates"]]
    device_id, key = f"drill-{uuid.uuid4().hex[:8]}", tmp_path / "device.key"
    votestream("kiosk", "keygen", "--out", str(key))
    registered = votestream(
        "kiosk", "register", device_id, "--public-key", f"{key}.pub", env=system.env
    )
    assert f"registered {device_id}" in registered
    # the kiosk starts offline: the server's sealing key is provisioned with the device key
    (sealing_key,) = [line.split()[2] for line in registered.splitlines() if "sealing key" in line]
    port = free_port()
    agent = Agent(
        [sys.executable, "-m", "services", "kiosk", "agent", "--server",
         f"http://127.0.0.1:{relay.port}", "--device-id", device_id, "--key", str(key),
         "--data", str(tmp_path / "kiosk"), "--listen", f"127.0.0.1:{port}",
         "--batch-size", "40", "--max-backoff", "1", "--sealing-key", sealing_key],
        port,
        tmp_path / "agent.log",
        tmp_path / "kiosk",
    )  # fmt: skip
    agent.start()

    rng = random.Random(6)
    phones = [f"+86139{i:08d}" for i in range(BALLOTS)]
    ballots = [
        (str(uuid.uuid4()), phone, rng.sample(candidates, rng.randint(1, 10))) for phone in phones
    ]
    cast_count = 0
    counted = threading.Lock()

    def cast(ballot: tuple[str, str, list[str]]) -> None:
        """Retries with the same ballot_id until the agent has it: it may be dead right now."""
        nonlocal cast_count
        ballot_id, phone, selections = ballot
        body = {
            "campaign_id": cid,
            "voter": phone,
            "selections": selections,
            "ballot_id": ballot_id,
        }
        while True:
            try:
                response = client.post(
                    f"{agent.url}/ballots", json=body, headers=agent.headers, timeout=5
                )
            except httpx.HTTPError:
                agent_up.wait(timeout=10)  # it is being killed or restarted
                continue
            assert response.status_code in (200, 201), response.text
            with counted:
                cast_count += 1
            return

    agent_up = threading.Event()
    agent_up.set()
    with httpx.Client() as client, ThreadPoolExecutor(4) as pool:
        casting = [pool.submit(cast, b) for b in ballots]
        for kill_at in KILL_AT:
            eventually(lambda k=kill_at: cast_count >= k, timeout=120, what=f"{kill_at} casts")
            agent_up.clear()
            agent.kill()
            agent.start()
            agent_up.set()
        for future in casting:
            future.result(timeout=120)
    assert agent.status()["ballots"] == {"queued": BALLOTS}  # nothing reached the server

    relay.start()  # the network is back
    eventually(
        lambda: agent.status()["ballots"] == {"accepted": BALLOTS},
        timeout=120,
        what="every ballot accepted",
    )
    record = agent.status()["votes"][cid]
    assert sum(record.values()) == sum(len(s) for _, _, s in ballots)

    def published() -> dict[str, Any] | None:
        got = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5).json()
        return got if got.get("ballots_counted") == BALLOTS else None

    snapshot = eventually(published, timeout=90, what="500 kiosk ballots published")
    assert {
        c["id"]: c["by_channel"]["kiosk"] for c in snapshot["candidates"] if c["votes"]
    } == record
    assert snapshot["ballots_rejected"] == {}
    for ballot_id, _, _ in rng.sample(ballots, 20):
        fate = httpx.get(f"{system.ingest}/v1/ballots/{ballot_id}", timeout=5).json()
        assert fate["status"] == "counted"

    kiosks = httpx.get(f"{system.ingest}/v1/admin/kiosks", headers=system.admin_headers()).json()
    (mine,) = [k for k in kiosks["kiosks"] if k["device_id"] == device_id]
    assert mine["chain"]["status"] == "intact" and mine["last_seq"] == mine["batches"]
    listed = votestream("kiosk", "list", env=system.env)
    assert f"{device_id}\tactive\tseq {mine['last_seq']}\tintact (gaps 0, forks 0)" in listed
    votestream("kiosk", "revoke", device_id, env=system.env)
    assert f"{device_id}\trevoked" in votestream("kiosk", "list", env=system.env)
    assert agent.stop() == 0
    stored = b"".join(p.read_bytes() for p in (tmp_path / "kiosk").iterdir())
    assert not any(phone[3:].encode() in stored for phone in phones[:50])
