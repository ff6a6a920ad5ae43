"""`votestream up`: the whole system on one machine, supervised, stopped in an order that
loses nothing.

Start: broker and database (embedded unless configured), topics, migrations, the demo
campaign, then ingest, tally and publish as children.

Run: a service that exits is started again after a backoff (0.5 s, doubling up to 15 s; back
to 0.5 s once it has run for a minute) while the others keep running; each restart is logged
with the service, why it exited and when it comes back.

Stop (SIGINT, SIGTERM or SIGHUP, at any moment, start-up included): ingest first, so no new
ballot is accepted; then a drain marker into every partition, and the tally (restarted if it
dies meanwhile) runs until it has passed them all; then tally and publish; then the database
and the broker. The event loop handles the signals (a wake-up fd: the handler takes no lock,
the callback runs on the loop), and more signals while stopping change nothing, except in
one case: the tally cannot drain and the broker keeps the uncounted ballots only in memory.
Then `up` says so, keeps broker, database and tally running and goes on trying, and only a
further signal makes it stop anyway, with a warning that those ballots are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp

from services.runtime.campaigns import CampaignStore, read_campaign_file
from services.runtime.db import connect_pool, migrate
from services.runtime.drain import DrainMarker
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.kafka import KafkaSecurity, ensure_topics
from services.runtime.processes import spawn, stop, stop_all
from services.runtime.settings import Settings, ensure_dev_secrets

SERVICES = ("ingest", "tally", "publish")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
READY_TIMEOUT = 90.0
START_ATTEMPTS = 5  # a service that never gets ready: a setting or the code is wrong
TICK = 0.2

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    first: float = 0.5
    cap: float = 15.0
    stable: float = 60.0  # a run this long counts as healthy: the next restart is quick again

    def delay(self, restarts: int) -> float:
        return float(min(self.cap, self.first * 2 ** min(restarts, 16)))


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    started: float  # monotonic
    restarts: int = 0  # restarts in a row, each after less than Backoff.stable
    due: float | None = None  # when it starts again, once it has exited


@dataclass
class Stack:
    settings: Settings
    broker: EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None
    children: dict[str, Child] = field(default_factory=dict)

    def ports(self) -> dict[str, int]:
        s = self.settings
        return {"ingest": s.ingest_port, "tally": s.tally_port, "publish": s.publish_port}

    @property
    def holds_ballots_only_in_memory(self) -> bool:
        return self.broker is not None and not self.broker.durable


async def prepare(settings: Settings, demo: Path | None, duration: str) -> str | None:
    """Topics, migrations and the demo campaign (loaded once, open from now)."""
    await ensure_topics(
        settings.bootstrap, settings.partitions, KafkaSecurity.from_settings(settings)
    )
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


class _Stopping(Exception):
    """A stop signal arrived while the stack was starting."""


def _why(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Supervisor:
    def __init__(
        self, settings: Settings, env: dict[str, str], logs: Path, out: Callable[[str], None]
    ) -> None:
        self.stack = Stack(settings)
        self.env, self.logs, self.out = env, logs, out
        self.backoff = Backoff()
        self.stop_requested = asyncio.Event()
        self.holding = False  # the tally cannot drain and the broker keeps ballots in memory
        self.forced = False

    def _on_signal(self, sig: signal.Signals) -> None:
        """Runs on the event loop (not in the signal handler), so it may do anything."""
        if self.holding and not self.forced:
            self.forced = True
            self.out(f"{sig.name}: stopping anyway")
        elif self.stop_requested.is_set():
            self.out(f"{sig.name}: already stopping")
        else:
            self.out(f"{sig.name}: stopping")
        self.stop_requested.set()

    async def run(self, demo: Path | None, duration: str, secrets: Path) -> int:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        self.out("votestream starting (SIGINT, SIGTERM or SIGHUP stop it)")
        code = 0
        try:
            campaign_id = await self._start(demo, duration)
            _announce(self.out, self.stack.settings, campaign_id, secrets, self.logs)
            await self._supervise()
        except _Stopping:
            pass
        except Exception as exc:  # noqa: BLE001 - whatever failed, the stack is stopped below
            self.out(f"votestream failed: {exc} (logs in {self.logs})")
            code = 1
        finally:
            self.out("stopping ...")
            await self._stop()
            self.out("stopped")
            # Stopped: a signal still on its way (a burst of them) must not end the process
            # with a signal's exit code; ignored from here, not handed back to the defaults.
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
        return 1 if self.forced else code  # forced: ballots answered 202 may be lost

    async def _start(self, demo: Path | None, duration: str) -> str | None:
        s = self.stack.settings
        # The embedded servers start in the loop's own thread (a child's parent-death signal
        # follows the thread that spawned it); a signal meanwhile waits in the wake-up fd.
        if s.embedded_kafka:
            self.stack.broker = EmbeddedBroker(
                s.kafka_port,
                self.logs / "tansu.log",
                s.host,
                s.broker_storage,
                s.data_dir / "broker",
            )
            self.stack.broker.start()
            await self._checkpoint()
        if s.embedded_postgres:
            self.stack.postgres = EmbeddedPostgres(s.data_dir / "postgres", s.pg_port)
            self.stack.postgres.start()
            await self._checkpoint()
        campaign_id = await self._unless_stopped(prepare(s, demo, duration))
        for name in SERVICES:
            self._spawn(name)
        await self._unless_stopped(self._ready(READY_TIMEOUT))
        return campaign_id

    async def _checkpoint(self) -> None:
        # lets the loop read the wake-up fd and run the signal callbacks that are due
        await asyncio.sleep(0.01)
        if self.stop_requested.is_set():
            raise _Stopping

    async def _unless_stopped(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self.stop_requested.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise _Stopping
        return task.result()

    def _spawn(self, name: str, restarts: int = 0) -> None:
        argv = [sys.executable, "-m", f"services.{name}"]
        proc = spawn(argv, log=self.logs / f"{name}.log", env=self.env)
        self.stack.children[name] = Child(name, proc, time.monotonic(), restarts)
        self.out(f"{name} {'restarted' if restarts else 'started'} (pid {proc.pid})")

    async def _ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        pending = dict(self.stack.ports())
        host = self.stack.settings.host
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            while pending:
                for name, port in list(pending.items()):
                    child = self.stack.children[name]
                    code = child.proc.poll()
                    if code is not None and child.restarts + 1 >= START_ATTEMPTS:
                        log = self.logs / f"{name}.log"
                        raise RuntimeError(
                            f"{name} exited {START_ATTEMPTS} times while starting, last with"
                            f" {_why(code)}; see {log}"
                        )
                    if await _answers_ready(http, host, port):
                        del pending[name]
                self._tend(pending)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not ready within {within:.0f}s: {', '.join(pending)}")
                await asyncio.sleep(0.1)

    async def _stop_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), seconds)
        return self.stop_requested.is_set()

    async def _supervise(self) -> None:
        while not await self._stop_within(TICK):
            self._tend(SERVICES)
            await self._tend_broker()

    async def _tend_broker(self) -> None:
        """An embedded broker that died is started again on the same port (the services
        reconnect by themselves); from memory storage, what it held is gone, and `up` says so."""
        broker = self.stack.broker
        if broker is None or (code := broker.exited()) is None:
            return
        broker.stop()  # the other half of it (Tansu or its S3 server)
        if broker.durable:
            self.out(f"broker exited ({_why(code)}); restarting it on its data (nothing lost)")
        else:
            self.out(
                f"WARNING: broker exited ({_why(code)}): it kept the ballots in memory, so those"
                " not counted yet are LOST; restarting it empty"
            )
        try:
            broker.start()
            await ensure_topics(self.stack.settings.bootstrap, self.stack.settings.partitions)
        except Exception as exc:  # noqa: BLE001 - tried again on the next tick
            self.out(f"broker restart failed ({exc}); trying again")
            return
        self.out("broker restarted")

    def _tend(self, names: Iterable[str]) -> None:
        """Restarts the services among `names` that exited, each after its backoff."""
        now = time.monotonic()
        for name in names:
            child = self.stack.children.get(name)
            if child is None:
                continue
            if child.due is None:
                code = child.proc.poll()
                if code is None:
                    continue
                ran = now - child.started
                if ran >= self.backoff.stable:
                    child.restarts = 0
                delay = self.backoff.delay(child.restarts)
                child.due = now + delay
                self.out(
                    f"{name} exited ({_why(code)}) after {ran:.1f} s; restarting it in"
                    f" {delay:.1f} s, the rest keeps running (log: {self.logs / name}.log)"
                )
            elif now >= child.due:
                self._spawn(name, child.restarts + 1)

    async def _stop(self) -> None:
        # Each wait for a child runs in a thread, so the loop keeps taking signals meanwhile.
        ingest = self.stack.children.pop("ingest", None)
        if ingest is not None:
            await asyncio.to_thread(stop, ingest.proc)
            self.out("ingest stopped: no new ballots")
            await self._drain()
        await asyncio.to_thread(stop_all, [child.proc for child in self.stack.children.values()])
        self.stack.children.clear()
        if self.stack.postgres is not None:
            await asyncio.to_thread(self.stack.postgres.stop)
        if self.stack.broker is not None:
            await asyncio.to_thread(self.stack.broker.stop)

    async def _drain(self) -> None:
        """Until the tally has passed a fresh marker on every partition; see the module doc
        for what happens when it cannot."""
        marker, limit = DrainMarker(self.stack.settings), self.stack.settings.drain_timeout
        started, problem = time.monotonic(), "the tally has not passed the marker"
        sent = warned = False
        while not self.forced:
            try:
                if not sent and await asyncio.wait_for(marker.nothing_written(), 15):
                    self.out("tally drained: yes (no ballot was ever written)")
                    return
                if not sent:
                    await asyncio.wait_for(marker.send(), 15)
                    sent = True
                if await asyncio.wait_for(marker.passed(), 10):
                    self.out("tally drained: yes")
                    return
            except Exception as exc:  # noqa: BLE001 - broker or database not answering: retry
                problem = f"{type(exc).__name__}: {exc}"
            self._tend(("tally",))
            if not warned and time.monotonic() - started > limit:
                warned = True
                if not self.stack.holds_ballots_only_in_memory:
                    self.out(
                        f"tally drained: NO within {limit:.0f} s ({problem}); the"
                        " uncounted ballots stay in the broker and are counted at the next start"
                    )
                    return
                self.holding = True
                self.out(
                    f"WARNING: tally drained: NO within {limit:.0f} s ({problem}). The"
                    " embedded broker keeps the ballots not yet counted in memory only, so the"
                    " broker, the database and the tally keep running and the drain goes on."
                    " Fix the tally (log: {}), or signal again to stop anyway and LOSE"
                    " them.".format(self.logs / "tally.log")
                )
            await asyncio.sleep(TICK)
        self.out(
            "WARNING: tally drained: NO, stopped anyway on request: ballots that got a 202"
            " and were not counted yet are LOST with the embedded broker's memory"
        )


async def _answers_ready(http: aiohttp.ClientSession, host: str, port: int) -> bool:
    try:
        async with http.get(f"http://{host}:{port}/readyz") as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def _print(line: str) -> None:
    print(line, flush=True)


def up(env: dict[str, str], demo: Path | None, duration: str = "14d") -> int:
    data_dir = Path(env.get("VOTESTREAM_DATA_DIR", ".votestream")).resolve()
    secrets_path = ensure_dev_secrets(data_dir)
    env = {**env, "VOTESTREAM_DATA_DIR": str(data_dir)}
    settings = Settings.from_env(env)
    env.setdefault("VOTESTREAM_PUBLIC_BASE_URL", f"http://{settings.host}:{settings.ingest_port}")
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    async def supervise() -> int:
        supervisor = Supervisor(settings, env, logs, _print)
        return await supervisor.run(demo, duration, secrets_path)

    return asyncio.run(supervise())


def _announce(
    out: Callable[[str], None], s: Settings, campaign_id: str | None, secrets: Path, logs: Path
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
