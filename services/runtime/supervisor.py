"""`votestream up`: the whole system on one machine, stopped in an order that loses nothing.

Start: broker and database (embedded unless configured), topics, migrations, the demo
campaign, then ingest, tally and publish as children. Stop (Ctrl-C, SIGTERM, or any child
dying): ingest first, so no new ballot is accepted; then a drain marker into every
partition, and the tally keeps running until it has passed them all; then tally and publish;
then the database and the broker.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from schemas.events import encode_cutoff
from services.domain.ballot import Cutoff
from services.runtime.campaigns import CampaignStore, read_campaign_file
from services.runtime.db import connect_pool, migrate
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.kafka import BALLOTS, ensure_topics, make_producer, start_producer
from services.runtime.processes import spawn, stop
from services.runtime.settings import Settings, ensure_dev_secrets

SERVICES = ("ingest", "tally", "publish")
DRAIN_TIMEOUT = 60.0


@dataclass
class Stack:
    settings: Settings
    broker: EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def ports(self) -> dict[str, int]:
        s = self.settings
        return {"ingest": s.ingest_port, "tally": s.tally_port, "publish": s.publish_port}


async def prepare(settings: Settings, demo: Path | None, duration: str) -> str | None:
    """Topics, migrations and the demo campaign (loaded once, open from now)."""
    await ensure_topics(settings.bootstrap, settings.partitions)
    await migrate(settings.dsn)
    if demo is None:
        return None
    pool = await connect_pool(settings.dsn, max_size=2)
    try:
        store = CampaignStore(pool)
        campaign = read_campaign_file(demo, open_now=True, duration=duration)
        if campaign.id not in {c.id for c in await store.all()}:
            await store.put(campaign)
        return campaign.id
    finally:
        await pool.close()


def start_stack(settings: Settings, logs: Path) -> Stack:
    stack = Stack(settings)
    if settings.embedded_kafka:
        stack.broker = EmbeddedBroker(settings.kafka_port, logs / "tansu.log", settings.host)
        stack.broker.start()
    if settings.embedded_postgres:
        stack.postgres = EmbeddedPostgres(settings.data_dir / "postgres", settings.pg_port)
        stack.postgres.start()
    return stack


def start_services(stack: Stack, logs: Path, env: dict[str, str]) -> None:
    for name in SERVICES:
        argv = [sys.executable, "-m", f"services.{name}"]
        stack.children[name] = spawn(argv, log=logs / f"{name}.log", env=env)


def wait_ready(stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(stack.ports())
    while pending:
        for name, port in list(pending.items()):
            if stack.children[name].poll() is not None:
                raise RuntimeError(f"{name} exited with {stack.children[name].returncode}")
            if _ready(stack.settings.host, port):
                del pending[name]
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready within {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.1)


def _ready(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def drain(settings: Settings, wait_seconds: float = DRAIN_TIMEOUT) -> bool:
    """Waits until the tally has passed a fresh marker on every partition of `ballots`."""
    marker_id = f"drain:{uuid.uuid4()}"
    producer = make_producer(settings.bootstrap)
    try:
        await start_producer(producer, attempts=5)
        partitions = sorted(await producer.partitions_for(BALLOTS))
        data = encode_cutoff(Cutoff(marker_id, datetime.now(UTC)))
        for partition in partitions:
            await producer.send_and_wait(BALLOTS, data, key=b"drain", partition=partition)
    finally:
        await producer.stop()
    conn = await asyncpg.connect(settings.dsn)
    try:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            passed = await conn.fetchval(
                "SELECT count(*) FROM cutoff_marks WHERE campaign_id = $1", marker_id
            )
            if passed >= len(partitions):
                await conn.execute("DELETE FROM cutoff_marks WHERE campaign_id = $1", marker_id)
                return True
            await asyncio.sleep(0.1)
        return False
    finally:
        await conn.close()


class _Printer:
    def __call__(self, line: str) -> None:
        print(line, flush=True)


def stop_stack(stack: Stack, out: _Printer) -> None:
    ingest = stack.children.get("ingest")
    if ingest is not None:
        stop(ingest)
    tally = stack.children.get("tally")
    if tally is not None and tally.poll() is None and stack.broker is not None:
        try:
            drained = asyncio.run(drain(stack.settings))
            out(f"tally drained: {'yes' if drained else 'NO (timed out)'}")
        except Exception as exc:  # noqa: BLE001 - shutting down whatever happens
            out(f"tally drain failed: {exc}")
    for name in ("tally", "publish"):
        child = stack.children.get(name)
        if child is not None:
            stop(child)
    if stack.postgres is not None:
        stack.postgres.stop()
    if stack.broker is not None:
        stack.broker.stop()


def up(env: dict[str, str], demo: Path | None, duration: str = "14d") -> int:
    out = _Printer()
    data_dir = Path(env.get("VOTESTREAM_DATA_DIR", ".votestream")).resolve()
    secrets_path = ensure_dev_secrets(data_dir)
    env = {**env, "VOTESTREAM_DATA_DIR": str(data_dir)}
    settings = Settings.from_env(env)
    env.setdefault("VOTESTREAM_PUBLIC_BASE_URL", f"http://{settings.host}:{settings.ingest_port}")
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stack = Stack(settings)
    code = 0
    try:
        stack = start_stack(settings, logs)
        campaign_id = asyncio.run(prepare(settings, demo, duration))
        start_services(stack, logs, env)
        wait_ready(stack, timeout=90)
        _announce(out, settings, campaign_id, secrets_path, logs)
        code = _watch(stack, stopping, out)
    except (RuntimeError, TimeoutError, OSError) as exc:
        out(f"votestream failed: {exc} (logs in {logs})")
        code = 1
    finally:
        out("stopping ...")
        stop_stack(stack, out)
        out("stopped")
    return code


def _watch(stack: Stack, stopping: threading.Event, out: _Printer) -> int:
    while not stopping.wait(0.2):
        for name, child in stack.children.items():
            if child.poll() is not None:
                out(f"{name} exited with {child.returncode}; stopping everything")
                return 1
    return 0


def _announce(
    out: _Printer, s: Settings, campaign_id: str | None, secrets: Path, logs: Path
) -> None:
    base_in, base_pub = f"http://{s.host}:{s.ingest_port}", f"http://{s.host}:{s.publish_port}"
    out(f"ingest   {base_in}   (web, WeChat /wechat, kiosk, admin API)")
    out(f"publish  {base_pub}   (results API)")
    out(f"tally    http://{s.host}:{s.tally_port}/metrics")
    if campaign_id:
        out(f"vote     {base_in}/vote/{campaign_id}")
        out(f"results  {base_pub}/campaigns/{campaign_id}")
        out(f"api      {base_pub}/v1/campaigns/{campaign_id}/results")
    out(f"secrets  {secrets}")
    out(f"logs     {logs}")
    out("votestream ready")
