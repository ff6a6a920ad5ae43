"""PostgreSQL connections and migrations (plain numbered SQL files, applied once, in order)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import asyncpg

from services.domain.errors import VotestreamError

MIGRATIONS = "services.runtime.migrations"
# What a database call raises while Postgres is away, restarting or refusing: a caller that
# tries again later catches exactly these (the socket's errors and asyncpg's own).
DB_ERRORS: tuple[type[Exception], ...] = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
_MIGRATION_LOCK = 7400  # advisory lock key: one migrator at a time

# Every statement planned for its own arguments. asyncpg prepares each statement once per
# connection, and after five runs PostgreSQL may keep one generic plan for it, costed by the
# tables as they were then. A vote starts with an empty `ballots` table, so the ballot-id and
# voter-usage lookups of ingest and the tally (`= ANY` of several keys) settled on sequential
# scans and grew slower with every ballot stored, until the next ANALYZE invalidated them:
# 6.4 ms a lookup at 60,000 ballots against 0.2 ms on the index. Planning each run costs
# a few tens of µs (tests/integration/test_growing_tables.py).
SESSION = {
    "timezone": "UTC",
    "application_name": "votestream",
    "plan_cache_mode": "force_custom_plan",
}


async def connect_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, stateless: bool = False
) -> asyncpg.Pool:
    """A pool in UTC whose statements are planned for their arguments (`SESSION`).
    `stateless`: the caller never leaves session state on a connection (no session locks,
    LISTEN or SET), so releasing one skips asyncpg's reset query — a round trip per release
    on the hot paths of ingest and the tally."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings=SESSION,
        reset=_keep_session if stateless else None,
    )
    assert pool is not None
    return pool


async def _keep_session(_: asyncpg.Connection) -> None:
    return None


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration shipped, in order."""
    found = []
    for entry in resources.files(MIGRATIONS).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class SchemaTooNewError(VotestreamError):
    """The database holds migrations this code does not ship: it belongs to a newer release."""

    code = "schema_too_new"


@dataclass(frozen=True)
class SchemaState:
    """Which shipped migrations a database lacks, and any it has that this code does not know."""

    pending: tuple[str, ...]
    unknown: tuple[int, ...]

    @property
    def current(self) -> bool:
        return not self.pending and not self.unknown

    def refuse_if_newer(self) -> None:
        if self.unknown:
            raise SchemaTooNewError(
                f"the database schema is newer than this code: it has migration "
                f"{max(self.unknown)}, this code knows up to {expected_version()};"
                " run the matching votestream release"
            )


def expected_version() -> int:
    """The schema version this code expects: the highest migration it ships."""
    return migration_files()[-1][0]


async def schema_state(conn: asyncpg.Connection) -> SchemaState:
    """Compares the applied migrations with the shipped ones; changes nothing."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: set[int] = set()
    if exists:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    shipped = migration_files()
    known = {version for version, _, _ in shipped}
    return SchemaState(
        pending=tuple(name for version, name, _ in shipped if version not in done),
        unknown=tuple(sorted(done - known)),
    )


async def check_schema(dsn: str) -> SchemaState:
    conn = await asyncpg.connect(dsn)
    try:
        return await schema_state(conn)
    finally:
        await conn.close()


async def migrate(dsn: str) -> list[str]:
    """Applies the migrations not yet applied, under a lock; returns their names.

    Refuses (SchemaTooNewError) a database that a newer release has migrated: this code
    cannot know what its tables mean.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        state = await schema_state(conn)
        state.refuse_if_newer()
        applied = []
        for version, name, sql in migration_files():
            if name not in state.pending:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            applied.append(name)
        return applied
    finally:
        await conn.close()
