"""Console sessions in a real PostgreSQL: a cookie finds its session only under the admin token
it was earned with, so changing VOTESTREAM_ADMIN_TOKEN signs every organiser out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.ingest.console.sessions import ConsoleSessions
from services.runtime.db import connect_pool


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database)
    yield pool
    await pool.close()


async def test_a_session_ends_when_the_admin_token_changes(pool: asyncpg.Pool) -> None:
    cookie, _ = await ConsoleSessions(pool, admin_token="token-before").open("alice")
    before = await ConsoleSessions(pool, admin_token="token-before").find(cookie)
    assert before is not None and before.organiser == "alice"
    assert await ConsoleSessions(pool, admin_token="token-after").find(cookie) is None


async def test_the_database_holds_no_cookie_a_dump_could_replay(pool: asyncpg.Pool) -> None:
    cookie, _ = await ConsoleSessions(pool, admin_token="token").open("bob")
    stored = [r["token_hash"] for r in await pool.fetch("SELECT token_hash FROM console_sessions")]
    assert stored and all(cookie not in row for row in stored)
    # whoever reads the table has neither the cookie nor the key its digest is made with
    assert await ConsoleSessions(pool, admin_token="token").find(stored[0]) is None
