"""Console sessions: the admin token exchanged for a cookie that expires.

The cookie holds 32 random bytes; Postgres keeps only their HMAC-SHA256 under the admin token,
so every ingest process knows every session and a database dump holds no usable cookie. Keyed
by the admin token, a session lives only as long as the token it was earned with: changing
VOTESTREAM_ADMIN_TOKEN (to shut out someone who knew it) signs every console session out too.
Each session has its own CSRF token, which every form that changes something must send back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

SESSION_TTL = timedelta(hours=8)  # one working day of an announcement; then sign in again
COOKIE = "votestream_console"


@dataclass(frozen=True)
class Session:
    organiser: str
    csrf: str
    expires_at: datetime

    def csrf_matches(self, given: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), given.encode())


class ConsoleSessions:
    def __init__(
        self, pool: asyncpg.Pool, *, admin_token: str, ttl: timedelta = SESSION_TTL
    ) -> None:
        self.pool = pool
        self.ttl = ttl
        self._key = admin_token.encode()

    def _hash(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    async def open(self, organiser: str) -> tuple[str, Session]:
        """A new session; returns the cookie value (shown to the browser once) and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(organiser, secrets.token_urlsafe(32), datetime.now(UTC) + self.ttl)
        await self.pool.execute(
            "INSERT INTO console_sessions (token_hash, organiser, csrf, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            self._hash(token),
            session.organiser,
            session.csrf,
            session.expires_at,
        )
        # sign-in is rare: clearing expired sessions here keeps the table small without a timer
        await self.pool.execute("DELETE FROM console_sessions WHERE expires_at < now()")
        return token, session

    async def find(self, token: str) -> Session | None:
        row = await self.pool.fetchrow(
            "SELECT organiser, csrf, expires_at FROM console_sessions"
            " WHERE token_hash = $1 AND expires_at > now()",
            self._hash(token),
        )
        return Session(row["organiser"], row["csrf"], row["expires_at"]) if row else None

    async def close(self, token: str) -> None:
        await self.pool.execute(
            "DELETE FROM console_sessions WHERE token_hash = $1", self._hash(token)
        )


async def audit(
    pool: asyncpg.Pool,
    organiser: str,
    action: str,
    campaign_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One row in the append-only console audit: who, when (the database's clock), what."""
    await pool.execute(
        "INSERT INTO console_audit (organiser, action, campaign_id, detail)"
        " VALUES ($1, $2, $3, $4::jsonb)",
        organiser,
        action,
        campaign_id,
        orjson.dumps(detail or {}).decode(),
    )
