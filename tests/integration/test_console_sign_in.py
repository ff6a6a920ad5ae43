"""Console sign-in against a real PostgreSQL: guessing the admin token stops after a few
tries from one network, and the right token then changes nothing either."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.ingest.console.sessions import COOKIE
from services.ingest.console.throttle import MAX_FAILURES
from services.runtime.db import connect_pool
from tests.unit.web_fakes import web_client

ADMIN_TOKEN = "unit-admin"  # what web_client configures


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database)
    yield pool
    await pool.close()


async def test_guessing_the_admin_token_is_cut_off_after_a_few_tries(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    async with web_client(tmp_path, pool=pool) as client:
        guesses = [
            await client.post("/admin/sign-in", data={"organiser": "x", "token": f"guess-{n}"})
            for n in range(MAX_FAILURES)
        ]
        assert [g.status for g in guesses] == [401] * MAX_FAILURES
        right = await client.post(
            "/admin/sign-in",
            data={"organiser": "x", "token": ADMIN_TOKEN},
            allow_redirects=False,
        )
        assert right.status == 429 and int(right.headers["Retry-After"]) > 0
        assert COOKIE not in right.cookies
    audited = await pool.fetchval("SELECT count(*) FROM console_audit WHERE organiser = 'x'")
    assert audited == MAX_FAILURES  # the refused try is not a row: a flood cannot fill the table
