"""Looking ballot ids up in Postgres, many requests per round trip.

Under load, every client-chosen ballot_id is checked against the stored ballots. Lookups that
arrive while one query is in flight are answered together by the next one, so the cost is a
round trip per burst rather than per ballot.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg

from services.domain.errors import UnavailableError
from services.runtime.db import DB_ERRORS

_QUERY = "SELECT ballot_id, voter_key, receipt FROM ballots WHERE ballot_id = ANY($1::uuid[])"


class StoredBallots:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._waiting: dict[UUID, list[asyncio.Future[asyncpg.Record | None]]] = {}
        self._drainer: asyncio.Task[None] | None = None

    async def find(self, ballot_id: UUID) -> asyncpg.Record | None:
        """The stored (voter_key, receipt) of a ballot, or None if the tally has not seen it."""
        future: asyncio.Future[asyncpg.Record | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(ballot_id, []).append(future)
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    rows = await self.pool.fetch(_QUERY, list(batch))
                except DB_ERRORS as exc:
                    error = UnavailableError("the ballot store is busy, try again", retry_after=2)
                    error.__cause__ = exc
                    _settle(batch, {}, error)
                    continue
                _settle(batch, {r["ballot_id"]: r for r in rows}, None)
        finally:
            self._drainer = None


def _settle(
    batch: dict[UUID, list[asyncio.Future[asyncpg.Record | None]]],
    found: dict[UUID, asyncpg.Record],
    error: Exception | None,
) -> None:
    for ballot_id, futures in batch.items():
        for future in futures:
            if future.done():
                continue  # its request was cancelled
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(found.get(ballot_id))
