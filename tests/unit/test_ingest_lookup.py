"""Ballot-id lookups arriving together share one query, and each gets its own answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from services.domain.errors import UnavailableError
from services.ingest.lookup import StoredBallots


class CountingPool:
    def __init__(self, stored: set[uuid.UUID], fail: bool = False) -> None:
        self.stored, self.fail, self.queries = stored, fail, 0

    async def fetch(self, query: str, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        self.queries += 1
        await asyncio.sleep(0)  # a round trip: others queue up meanwhile
        if self.fail:
            raise asyncpg.PostgresConnectionError("gone")
        return [{"ballot_id": i, "voter_key": "k", "receipt": "r"} for i in ids if i in self.stored]


async def test_concurrent_lookups_share_a_query_and_get_their_own_rows() -> None:
    known = {uuid.uuid4() for _ in range(10)}
    unknown = [uuid.uuid4() for _ in range(40)]
    pool = CountingPool(known)
    lookups = StoredBallots(pool)  # type: ignore[arg-type]
    asked = [*known, *unknown, *known]
    rows = await asyncio.gather(*(lookups.find(i) for i in asked))
    assert [row is not None for row in rows] == [i in known for i in asked]
    assert pool.queries == 1


async def test_a_failing_database_answers_every_waiting_lookup_with_503() -> None:
    lookups = StoredBallots(CountingPool(set(), fail=True))  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(lookups.find(uuid.uuid4()) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, UnavailableError) for r in results)
    with pytest.raises(UnavailableError):
        await lookups.find(uuid.uuid4())  # and the next one still gets a query of its own
