"""Each service started as a pod starts it: `votestream ingest|tally|publish` as a process,
before or against whatever state Postgres and Kafka are in.

/healthz answers at once; /readyz is 503 until Postgres and Kafka answer and the schema is
the one the code ships, then 200; a schema newer than the code stops the service with one
line; SIGTERM on ingest lets the ballots waiting for Kafka's acks finish with 202.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from services.domain.campaign import Campaign
from services.runtime.campaigns import CampaignStore
from services.runtime.db import expected_version
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.kafka import ensure_topics, make_producer
from services.runtime.locks import PARTITION_LOCK
from services.runtime.processes import free_port
from services.runtime.settings import ensure_dev_secrets, read_secrets
from tests.faults.stream import CANDIDATES, BallotStream, fault_campaign
from tests.support.stack import Stack, mark_schema_newer
from tests.support.system import REPO
from tests.support.waiting import eventually, eventually_async

pytestmark = pytest.mark.timeout(300)
PORT_VARIABLE = {"ingest": "INGEST", "publish": "PUBLISH", "tally": "TALLY"}


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    data_dir: Path
    group: str

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def status(self, path: str) -> int | None:
        """The HTTP status of a GET, or None while nothing answers on the port."""
        try:
            return httpx.get(self.url(path), timeout=2).status_code
        except httpx.HTTPError:
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def logged(self, text: str) -> bool:
        return self.alive() and text in self.output()

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.output()}")
        return True

    def answers(self, path: str, status: int) -> bool:
        return self.alive() and self.status(path) == status

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_service(name: str, base: Path, *, bootstrap: str, dsn: str, **extra: str) -> Service:
    data_dir = Path(extra.pop("data_dir", base / f"{name}-data"))
    secrets_dir = base / f"{name}-secrets"
    ensure_dev_secrets(secrets_dir)  # dev secrets, handed over as a pod's Secret would be
    port = free_port()
    group = extra.pop("VOTESTREAM_TALLY_GROUP", f"tally-{uuid.uuid4().hex[:8]}")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VOTESTREAM_")},
        **read_secrets(secrets_dir),
        "VOTESTREAM_HOST": "127.0.0.1",
        "VOTESTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "VOTESTREAM_DATABASE_URL": dsn,
        "VOTESTREAM_DATA_DIR": str(data_dir),
        "VOTESTREAM_TALLY_GROUP": group,
        "VOTESTREAM_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",  # what the vote page links to
        f"VOTESTREAM_{PORT_VARIABLE[name]}_PORT": str(port),
        **extra,
    }
    log = base / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services", name],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Service(name, proc, port, log, data_dir, group)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Service]]:
    """The services a test starts; each stopped (SIGTERM) at the end whatever happened."""
    services: list[Service] = []
    yield services
    for service in services:
        service.stop()


def migrate(dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOTESTREAM_DATABASE_URL": dsn}
    return subprocess.run(
        [sys.executable, "-m", "services", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def test_services_started_before_postgres_and_kafka_become_ready_once_both_are_up(
    tmp_path: Path, started: list[Service]
) -> None:
    kafka_port, pg_port = free_port(), free_port()
    bootstrap = f"127.0.0.1:{kafka_port}"
    dsn = f"postgresql://votestream@127.0.0.1:{pg_port}/votestream"
    for name in ("ingest", "publish", "tally"):
        started.append(start_service(name, tmp_path, bootstrap=bootstrap, dsn=dsn))
    for service in started:
        eventually(partial(service.answers, "/healthz", 200), 30, f"{service.name} /healthz")
        assert service.status("/readyz") == 503
    ingest = started[0]
    refused = httpx.get(ingest.url("/v1/campaigns/any"), timeout=5)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    for service in started:  # each has retried at least once and is still there
        eventually(partial(service.logged, "waiting for"), 30, f"{service.name} retries")
        assert service.alive()

    broker = EmbeddedBroker(kafka_port, tmp_path / "tansu.log")
    postgres = EmbeddedPostgres(tmp_path / "postgres", pg_port)
    broker.start()
    try:
        postgres.start()
        try:
            await ensure_topics(bootstrap, 3)
            for service in started:  # both answer, but the schema is not there yet
                assert service.answers("/readyz", 503)
            done = await asyncio.to_thread(migrate, dsn)
            assert done.returncode == 0, done.stderr
            for service in started:
                eventually(partial(service.answers, "/readyz", 200), 90, f"{service.name} ready")
            for service in started:
                assert "Traceback" not in service.output()
                assert service.stop() == 0, service.output()[-2000:]
        finally:
            postgres.stop()
    finally:
        broker.stop()


async def test_a_service_on_an_unmigrated_database_waits_for_migrate_instead_of_exiting(
    stack: Stack, tmp_path: Path, started: list[Service]
) -> None:
    dsn = await stack.empty_database()
    for name in ("ingest", "publish"):
        started.append(start_service(name, tmp_path, bootstrap=stack.bootstrap, dsn=dsn))
    for service in started:
        eventually(partial(service.answers, "/healthz", 200), 30, f"{service.name} /healthz")
        eventually(
            partial(service.logged, "run `votestream migrate`"),
            30,
            f"{service.name} says it waits for the migrations",
        )
        assert service.answers("/readyz", 503)
    done = await asyncio.to_thread(migrate, dsn)
    assert done.returncode == 0, done.stderr
    for service in started:
        eventually(partial(service.answers, "/readyz", 200), 60, f"{service.name} ready")
        assert "Traceback" not in service.output()


async def test_a_schema_newer_than_the_code_stops_every_service_with_one_clear_line(
    database: str, stack: Stack, tmp_path: Path, started: list[Service]
) -> None:
    newer = await mark_schema_newer(database)
    for name in ("ingest", "publish", "tally"):
        started.append(start_service(name, tmp_path, bootstrap=stack.bootstrap, dsn=database))
    for service in started:
        code = await asyncio.to_thread(service.proc.wait, 60)
        lines = service.output().strip().splitlines()
        assert code != 0, lines[-5:]
        assert lines[-1] == (
            f"{service.name}: the database schema is newer than this code: it has migration"
            f" {newer}, this code knows up to {expected_version()};"
            " run the matching votestream release"
        )
        assert "Traceback" not in service.output()


async def test_the_tally_starts_on_an_empty_data_volume(
    broker: EmbeddedBroker, database: str, tmp_path: Path, started: list[Service]
) -> None:
    await ensure_topics(broker.bootstrap, 3)
    volume = tmp_path / "volume"  # an emptyDir: there, but nothing in it
    volume.mkdir()
    tally = start_service(
        "tally",
        tmp_path,
        bootstrap=broker.bootstrap,
        dsn=database,
        data_dir=str(volume / "data"),
    )
    started.append(tally)
    eventually(lambda: tally.answers("/readyz", 200), 90, "the tally ready")
    assert (volume / "data" / "faust").is_dir()


async def test_publish_takes_a_keygen_key_and_shows_the_public_key_keygen_printed(
    database: str, stack: Stack, tmp_path: Path, started: list[Service]
) -> None:
    keygen = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services", "keygen"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    key_line, public_line = keygen.stdout.splitlines()
    name, _, signing_key = key_line.partition("=")
    publish = start_service(
        "publish", tmp_path, bootstrap=stack.bootstrap, dsn=database, **{name: signing_key}
    )
    started.append(publish)
    eventually(lambda: publish.answers("/readyz", 200), 60, "publish ready")
    shown = httpx.get(publish.url("/v1/publish/public-key"), timeout=5).json()
    assert shown == {"algorithm": "Ed25519", "public_key": public_line.rsplit(" ", 1)[1]}


async def test_sigterm_on_ingest_finishes_the_ballots_waiting_for_acks_and_they_count(
    broker: EmbeddedBroker, database: str, tmp_path: Path, started: list[Service]
) -> None:
    await ensure_topics(broker.bootstrap, 3)
    campaign = fault_campaign(f"d-{uuid.uuid4().hex[:8]}")
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    assert pool is not None
    try:
        await CampaignStore(pool).put(campaign)
        ingest = start_service("ingest", tmp_path, bootstrap=broker.bootstrap, dsn=database)
        tally = start_service("tally", tmp_path, bootstrap=broker.bootstrap, dsn=database)
        started.extend([ingest, tally])
        for service in started:
            eventually(partial(service.answers, "/readyz", 200), 90, f"{service.name} ready")
        voters = Voters(ingest, campaign.id)
        before, waiting, late = voters.make(1), voters.make(12), voters.make(1)[0]
        async with httpx.AsyncClient() as client:
            assert (await voters.cast(client, before[0])).status_code == 202
            assert broker.proc is not None
            broker.proc.send_signal(signal.SIGSTOP)  # acks wait until it is thawed
            try:
                casts = [asyncio.create_task(voters.cast(client, v)) for v in waiting]
                await eventually_async(
                    lambda: _in_flight_reaches(ingest, len(waiting)), 4, "ballots waiting for acks"
                )
                ingest.proc.send_signal(signal.SIGTERM)
                await eventually_async(
                    lambda: _readyz_is(client, ingest, 503), 3, "ingest unready while it drains"
                )
                refused = await voters.cast(client, late)
                assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
                assert ingest.proc.poll() is None  # still draining: its ballots wait for acks
            finally:
                broker.proc.send_signal(signal.SIGCONT)
            answers = await asyncio.gather(*casts)
        assert [a.status_code for a in answers] == [202] * len(waiting), [a.text for a in answers]
        assert await asyncio.to_thread(ingest.proc.wait, 60) == 0, ingest.output()[-2000:]
        await eventually_async(lambda: _counted(pool, before + waiting), 90, "every 202 counted")
        assert not await pool.fetchval(
            "SELECT count(*) FROM ballots WHERE ballot_id = $1", late.ballot_id
        )
    finally:
        await pool.close()


@dataclass
class Ballot:
    sub: str
    picks: list[str]
    ballot_id: uuid.UUID


@dataclass
class Voters:
    """Web voters of one campaign, with tokens signed by the ingest's own secret."""

    ingest: Service
    campaign_id: str

    def make(self, count: int) -> list[Ballot]:
        return [
            Ballot(f"v-{uuid.uuid4().hex[:10]}", [CANDIDATES[n % len(CANDIDATES)]], uuid.uuid4())
            for n in range(count)
        ]

    def token(self, sub: str) -> str:
        secret = read_secrets(self.ingest.data_dir.parent / "ingest-secrets")
        now = int(time.time())
        claims = {"sub": sub, "iat": now, "exp": now + 600}
        return jwt.encode(claims, secret["VOTESTREAM_WEB_JWT_SECRET"], algorithm="HS256")

    async def cast(self, client: httpx.AsyncClient, ballot: Ballot) -> httpx.Response:
        return await client.post(
            self.ingest.url(f"/v1/campaigns/{self.campaign_id}/ballots"),
            json={"selections": ballot.picks, "ballot_id": str(ballot.ballot_id)},
            headers={"Authorization": f"Bearer {self.token(ballot.sub)}"},
            timeout=30,
        )


def in_flight(service: Service) -> float:
    text = httpx.get(service.url("/metrics"), timeout=5).text
    found = re.search(r"^votestream_http_requests_in_flight (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


async def _in_flight_reaches(service: Service, count: int) -> bool:
    return await asyncio.to_thread(in_flight, service) >= count


async def _readyz_is(client: httpx.AsyncClient, service: Service, status: int) -> bool:
    return (await client.get(service.url("/readyz"), timeout=2)).status_code == status


async def _counted(pool: asyncpg.Pool, ballots: list[Ballot]) -> bool:
    ids = [b.ballot_id for b in ballots]
    n = await pool.fetchval(
        "SELECT count(*) FROM ballots WHERE status = 'counted' AND ballot_id = ANY($1::uuid[])",
        ids,
    )
    return bool(n == len(ids))


async def test_sigterm_on_the_tally_commits_the_batch_it_is_storing(
    broker: EmbeddedBroker, database: str, tmp_path: Path, started: list[Service]
) -> None:
    await ensure_topics(broker.bootstrap, 3)
    campaign = fault_campaign(f"s-{uuid.uuid4().hex[:8]}")
    blocker = await asyncpg.connect(database)
    producer = make_producer(broker.bootstrap)
    try:
        await _put(database, campaign)
        tally = start_service("tally", tmp_path, bootstrap=broker.bootstrap, dsn=database)
        started.append(tally)
        eventually(partial(tally.answers, "/readyz", 200), 90, "the tally ready")
        # Hold every partition's lock: the tally's next batch waits inside its transaction.
        await blocker.execute(
            "SELECT pg_advisory_lock($1, p) FROM generate_series(0, 2) AS p", PARTITION_LOCK
        )
        await producer.start()
        stream = BallotStream(producer, campaign, voters=50)
        await stream.burst(40)
        await eventually_async(lambda: _batch_waits(blocker), 30, "a batch waiting for its lock")
        tally.proc.send_signal(signal.SIGTERM)
        await eventually_async(
            lambda: asyncio.to_thread(_not_ready, tally), 10, "the tally stopping"
        )
        await blocker.execute("SELECT pg_advisory_unlock_all()")
        assert await asyncio.to_thread(tally.proc.wait, 60) == 0, tally.output()[-2000:]
        # The batch that waited is committed (rolled back, nothing would be stored); what
        # the worker had not taken yet stays uncommitted in Kafka for the next worker.
        assert await _stored(blocker, stream) > 0
        successor = start_service(
            "tally",
            tmp_path / "next",
            bootstrap=broker.bootstrap,
            dsn=database,
            VOTESTREAM_TALLY_GROUP=tally.group,
        )
        started.append(successor)
        await eventually_async(
            lambda: _all_stored(blocker, stream), 90, "the rest stored by the next worker"
        )
    finally:
        await producer.stop()
        await blocker.close()


async def _stored(conn: asyncpg.Connection, stream: BallotStream) -> int:
    found: int = await conn.fetchval(
        "SELECT count(*) FROM ballots WHERE ballot_id = ANY($1::uuid[])", list(stream.sent)
    )
    return found


async def _all_stored(conn: asyncpg.Connection, stream: BallotStream) -> bool:
    return await _stored(conn, stream) == len(stream.sent)


async def _put(dsn: str, campaign: Campaign) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    assert pool is not None
    try:
        await CampaignStore(pool).put(campaign)
    finally:
        await pool.close()


async def _batch_waits(conn: asyncpg.Connection) -> bool:
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND wait_event = 'advisory'"
    )
    return bool(waiting)


def _not_ready(service: Service) -> bool:
    return service.proc.poll() is not None or service.status("/readyz") != 200
