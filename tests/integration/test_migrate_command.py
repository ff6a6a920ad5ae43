"""`votestream migrate [--check]` against real PostgreSQL databases, as an operator's Job runs it.

Each test makes a database as a fresh cluster gives it: empty, no tables.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from services.runtime.db import expected_version, migration_files
from services.runtime.processes import free_port
from tests.support.stack import Stack, mark_schema_newer
from tests.support.system import REPO

SHIPPED = [name for _, name, _ in migration_files()]


@pytest.fixture
async def empty_database(stack: Stack) -> str:
    return await stack.empty_database()


def votestream(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOTESTREAM_DATABASE_URL": dsn}
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_migrate_applies_every_migration_once_and_then_finds_the_schema_current(
    empty_database: str,
) -> None:
    first = await asyncio.to_thread(votestream, empty_database, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        *(f"applied {name}" for name in SHIPPED),
        f"schema is current (version {expected_version()})",
    ]
    assert {"campaigns", "ballots", "tallies", "schema_migrations"} <= await tables(empty_database)

    again = await asyncio.to_thread(votestream, empty_database, "migrate")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"schema is current (version {expected_version()})"]


async def test_migrate_check_exits_1_naming_what_is_pending_and_applies_nothing(
    empty_database: str,
) -> None:
    pending = await asyncio.to_thread(votestream, empty_database, "migrate", "--check")
    assert pending.returncode == 1, pending.stdout + pending.stderr
    assert [f"pending {name}" for name in SHIPPED] == pending.stdout.splitlines()[:-1]
    assert await tables(empty_database) == set()

    assert (await asyncio.to_thread(votestream, empty_database, "migrate")).returncode == 0
    current = await asyncio.to_thread(votestream, empty_database, "migrate", "--check")
    assert current.returncode == 0, current.stdout + current.stderr
    assert "schema is current" in current.stdout


async def test_two_migrations_at_once_apply_each_file_exactly_once(empty_database: str) -> None:
    runs = await asyncio.gather(
        *(asyncio.to_thread(votestream, empty_database, "migrate") for _ in range(3))
    )
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    applied = [line for r in runs for line in r.stdout.splitlines() if line.startswith("applied")]
    assert sorted(applied) == sorted(f"applied {name}" for name in SHIPPED)
    conn = await asyncpg.connect(empty_database)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
    finally:
        await conn.close()
    assert sorted(versions) == [version for version, _, _ in migration_files()]


async def test_migrate_refuses_a_schema_newer_than_the_code_with_one_clear_line(
    database: str,
) -> None:
    newer = await mark_schema_newer(database)
    for args in (("migrate",), ("migrate", "--check")):
        refused = await asyncio.to_thread(votestream, database, *args)
        assert refused.returncode not in (0, 1), refused.stdout + refused.stderr
        assert refused.stderr.strip().splitlines() == [
            f"votestream: the database schema is newer than this code: it has migration {newer},"
            f" this code knows up to {expected_version()}; run the matching votestream release"
        ]
        assert "applied" not in refused.stdout


def test_migrate_gives_up_on_an_unreachable_postgres_after_its_wait_with_one_line() -> None:
    nobody = f"postgresql://votestream@127.0.0.1:{free_port()}/votestream"
    refused = votestream(nobody, "migrate", "--wait", "1")
    assert refused.returncode == 2, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("votestream: PostgreSQL did not answer within 1 s: "), last
    assert "Traceback" not in refused.stderr
