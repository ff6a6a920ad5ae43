"""Accepting a ballot once: idempotent on ballot_id, and each ballot's fate on request."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import asyncpg

from schemas.events import encode_ballot
from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.domain.errors import ConflictError, MalformedError, NotFoundError
from services.domain.rules import check_ballot
from services.ingest.intake import BallotSink, RecentBallots
from services.ingest.lookup import StoredBallots


def parse_ballot_id(raw: Any) -> UUID | None:
    if raw is None:
        return None
    try:
        return UUID(str(raw))
    except ValueError as exc:
        raise MalformedError("ballot_id must be a UUID", code="bad_ballot_id") from exc


def receipt_of(ballot: Ballot) -> str:
    """Hex SHA-256 of the exact record put on Kafka; the tally stores the same digest."""
    return hashlib.sha256(encode_ballot(ballot)).hexdigest()


class BallotDesk:
    """Takes ballots from every channel: first answer wins for a repeated ballot_id."""

    def __init__(self, sink: BallotSink, pool: asyncpg.Pool, recent: RecentBallots) -> None:
        self.sink, self.pool, self.recent = sink, pool, recent
        self.stored = StoredBallots(pool)

    async def cast(self, campaign: Campaign, ballot: Ballot, *, client_id: bool) -> dict[str, str]:
        """Checks, publishes and answers; `client_id` says the client chose the ballot_id."""
        if client_id:
            earlier = await self.earlier_answer(ballot)
            if earlier is not None:
                return earlier
        check_ballot(campaign, ballot)
        await self.sink.submit(ballot)
        answer = {
            "ballot_id": str(ballot.ballot_id),
            "receipt": receipt_of(ballot),
            "status": "pending",
        }
        self.recent.add(ballot.ballot_id, {**answer, "voter_key": ballot.voter_key})
        return answer

    async def earlier_answer(self, ballot: Ballot) -> dict[str, str] | None:
        known = self.recent.get(ballot.ballot_id)
        if known is None:
            row = await self.stored.find(ballot.ballot_id)
            if row is None:
                return None
            known = {
                "ballot_id": str(ballot.ballot_id),
                "receipt": row["receipt"],
                "status": "pending",
                "voter_key": row["voter_key"],
            }
        if known["voter_key"] != ballot.voter_key:
            raise ConflictError("this ballot_id belongs to another ballot", code="ballot_id_taken")
        return {k: v for k, v in known.items() if k != "voter_key"}

    async def fate(self, ballot_id: UUID) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "SELECT status, reason FROM ballots WHERE ballot_id = $1", ballot_id
        )
        if row is not None and row["status"] != "held":
            return {"ballot_id": str(ballot_id), "status": row["status"], "reason": row["reason"]}
        # held for the organiser (docs/ARCHITECTURE.md, "Defences"): to its voter, not
        # decided yet, and no hint of why
        if row is not None or self.recent.get(ballot_id) is not None:
            return {"ballot_id": str(ballot_id), "status": "pending", "reason": None}
        raise NotFoundError("no such ballot (yet)", code="unknown_ballot")
