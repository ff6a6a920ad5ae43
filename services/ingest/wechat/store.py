"""The WeChat channel's rows in Postgres: message dedup with its ballot outbox, and sessions.

Shared by every ingest process, so a retry that lands on another process sees the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson


@dataclass(frozen=True)
class MessageRecord:
    ballot_id: UUID | None
    ballot: bytes | None
    reply: str | None


class WeChatStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def message(self, message_key: str) -> MessageRecord | None:
        row = await self.pool.fetchrow(
            "SELECT ballot_id, ballot, reply FROM wechat_messages WHERE message_key = $1",
            message_key,
        )
        return MessageRecord(row["ballot_id"], row["ballot"], row["reply"]) if row else None

    async def claim(
        self,
        message_key: str,
        *,
        reply: str | None = None,
        ballot_id: UUID | None = None,
        ballot: bytes | None = None,
    ) -> bool:
        """Records the message first; False when another request already did."""
        status = await self.pool.execute(
            "INSERT INTO wechat_messages (message_key, ballot_id, ballot, reply, replied_at)"
            " VALUES ($1, $2, $3, $4, CASE WHEN $4::text IS NULL THEN NULL ELSE now() END)"
            " ON CONFLICT (message_key) DO NOTHING",
            message_key,
            ballot_id,
            ballot,
            reply,
        )
        return bool(status.endswith(" 1"))

    async def confirm(self, message_key: str, reply: str) -> str:
        """Sets the reply once the broker has the ballot; returns the reply that stands."""
        stored = await self.pool.fetchval(
            "UPDATE wechat_messages SET reply = COALESCE(reply, $2),"
            " replied_at = COALESCE(replied_at, now()) WHERE message_key = $1 RETURNING reply",
            message_key,
            reply,
        )
        return str(stored) if stored is not None else reply

    async def unconfirmed(self, older_than: float, limit: int = 100) -> list[tuple[str, bytes]]:
        rows = await self.pool.fetch(
            "SELECT message_key, ballot FROM wechat_messages WHERE reply IS NULL"
            " AND ballot IS NOT NULL AND created_at < now() - make_interval(secs => $1)"
            " ORDER BY created_at LIMIT $2",
            older_than,
            limit,
        )
        return [(r["message_key"], r["ballot"]) for r in rows]

    async def forget_answered(self, older_than: float, limit: int = 1000) -> int:
        """Deletes answered messages older than `older_than` seconds (a retry comes within
        15 s; an unanswered row is the outbox and stays until the sweep confirms it)."""
        status = await self.pool.execute(
            "DELETE FROM wechat_messages WHERE message_key IN ("
            " SELECT message_key FROM wechat_messages WHERE reply IS NOT NULL"
            " AND created_at < now() - make_interval(secs => $1)"
            " ORDER BY created_at LIMIT $2)",
            older_than,
            limit,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def bind_nonce(self, timestamp: int, nonce: str, digest: bytes) -> bytes:
        """The message digest the pair was first seen with (this one if the pair is new)."""
        inserted = await self.pool.execute(
            "INSERT INTO wechat_nonces (ts, nonce, message_digest) VALUES ($1, $2, $3)"
            " ON CONFLICT (ts, nonce) DO NOTHING",
            timestamp,
            nonce,
            digest,
        )
        if inserted.endswith(" 1"):
            return digest
        # a new statement: it sees the row a concurrent insert committed while we waited
        first = await self.pool.fetchval(
            "SELECT message_digest FROM wechat_nonces WHERE ts = $1 AND nonce = $2",
            timestamp,
            nonce,
        )
        return bytes(first) if first is not None else digest

    async def forget_nonces(self, older_than: float) -> int:
        """Deletes pairs whose timestamp is more than `older_than` seconds in the past."""
        status = await self.pool.execute(
            "DELETE FROM wechat_nonces WHERE ts < extract(epoch FROM now()) - $1", older_than
        )
        return int(status.rsplit(" ", 1)[-1])

    async def session_campaign(self, sender_key: str) -> str | None:
        value = await self.pool.fetchval(
            "SELECT campaign_id FROM wechat_sessions WHERE sender_key = $1", sender_key
        )
        return str(value) if value is not None else None

    async def switch_campaign(self, sender_key: str, campaign_id: str) -> None:
        await self.pool.execute(
            "INSERT INTO wechat_sessions (sender_key, campaign_id) VALUES ($1, $2)"
            " ON CONFLICT (sender_key) DO UPDATE"
            " SET campaign_id = EXCLUDED.campaign_id, updated_at = now()",
            sender_key,
            campaign_id,
        )

    async def latest_snapshot(self, campaign_id: str) -> dict[str, Any] | None:
        body = await self.pool.fetchval(
            "SELECT body FROM snapshots WHERE campaign_id = $1 ORDER BY seq DESC LIMIT 1",
            campaign_id,
        )
        return orjson.loads(body) if body is not None else None
