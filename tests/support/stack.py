"""The real embedded broker and PostgreSQL for integration tests, started once per session.

Each test gets its own database (migrated) and its own topic and group names, so tests
never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.runtime.db import expected_version, migrate
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.postgres_home import discard_cluster
from services.runtime.processes import free_port


@dataclass
class Stack:
    broker: EmbeddedBroker
    postgres: EmbeddedPostgres

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def dsn(self, database: str = "votestream") -> str:
        return f"postgresql://votestream@127.0.0.1:{self.postgres.port}/{database}"

    async def empty_database(self) -> str:
        """A fresh database as a new CloudNativePG cluster gives it, no tables; its DSN."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn(name)

    async def new_database(self) -> str:
        """A fresh, migrated database; returns its DSN."""
        dsn = await self.empty_database()
        await migrate(dsn)
        return dsn

    async def new_topic(self, partitions: int = 4, prefix: str = "ballots") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()
        return name


def start_stack(base: Path) -> Stack:
    broker = EmbeddedBroker(free_port(), base / "tansu.log")
    postgres = EmbeddedPostgres(base / "postgres", free_port())
    broker.start()
    try:
        postgres.start()
    except Exception:
        broker.stop()
        raise
    return Stack(broker, postgres)


async def mark_schema_newer(dsn: str) -> int:
    """Records a migration this code does not ship, as a newer release would have applied it;
    returns its version."""
    newer = expected_version() + 1
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            newer,
            f"{newer:04d}_from_a_newer_release.sql",
        )
    finally:
        await conn.close()
    return newer


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.postgres.stop()
    running.broker.stop()
    discard_cluster(running.postgres.data_dir)


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[str]:
    """The DSN of a fresh migrated database for one test."""
    yield await stack.new_database()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of the test's own, for tests that freeze it or need the fixed topic names."""
    running = EmbeddedBroker(free_port(), tmp_path / "tansu.log")
    running.start()
    yield running
    running.stop()
