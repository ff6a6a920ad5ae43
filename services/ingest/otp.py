"""Phone login: a one-time code by SMS, exchanged for a voter token whose `phone` is verified.

Codes are 6 digits, live VOTESTREAM_OTP_TTL seconds (300), allow VOTESTREAM_OTP_ATTEMPTS
wrong guesses (5) and work once. A phone gets one code per VOTESTREAM_OTP_RESEND_INTERVAL
(60 s) and VOTESTREAM_OTP_DAILY_SENDS (10) a day. Since every text costs money and SMS
pumping sends them by the thousand to number ranges that pay the sender back, sends are
also capped per minute across all phones (VOTESTREAM_OTP_SENDS_PER_MINUTE, 600) and per
number block, the first PREFIX_DIGITS digits of the E.164 number
(VOTESTREAM_OTP_PREFIX_SENDS_PER_MINUTE, 20); 0 switches a cap off. All these limits live
in PostgreSQL, not in each process, because they must hold whatever the replica count:
a per-process cap would multiply the bill by it. Every refusal answers the same text and
Retry-After, so a 429 never tells whether a given phone asked recently.

The send is reserved in one short transaction (limits checked, code and send recorded) and
the connection released before the gateway is called: a slow gateway must never hold the
pool that every other database path of ingest needs. A refused or failed send is taken back.
The database sees only pseudonymous phone and number-block keys and an HMAC of the code (all
keyed with VOTESTREAM_IDENTITY_KEY). Tokens are HS256 with VOTESTREAM_WEB_JWT_SECRET for
VOTESTREAM_WEB_TOKEN_TTL seconds; with no secret (only a public key) this login is switched
off and says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from services.domain.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from services.domain.voters import normalize_phone
from services.ingest.sms import SmsSender
from services.ingest.voters import TokenVerifier
from services.runtime.settings import Settings

CODE_DIGITS = 6
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
PREFIX_DIGITS = 7  # +86 138 00: country code and the block a carrier assigns
# At most this many of the pool's connections serve code sends of one process at a time, so
# a flood of logins queues here, not in front of the database every ballot path needs.
RESERVING_AT_ONCE = 4
ALL_SENDS = "otp-sends:all"  # the lock every capped send takes last
TRY_LATER = "no login code can be sent to this number now; please try again later"


class OtpDisabledError(ForbiddenError):
    code = "otp_login_disabled"


class OtpInvalidError(UnauthorizedError):
    code = "otp_invalid"


# The one answer to every refused code. "Wrong code" apart from "no code" would tell anyone
# who sends a guess for a number whether its owner asked for a login in the last minutes.
CODE_REFUSED = "this code is wrong, used up or expired: check it, or request a new one"
Refusal = Literal["no_code", "wrong", "used_up"]


def phone_key(identity_key: bytes, phone: str) -> str:
    """Pseudonymous key of an E.164 phone ("OTP:" cannot start a campaign id's voter key)."""
    return hmac.new(identity_key, f"OTP:{phone}".encode(), hashlib.sha256).hexdigest()


def block_key(identity_key: bytes, phone: str) -> str:
    """Pseudonymous key of an E.164 phone's number block (its first PREFIX_DIGITS digits)."""
    block = phone.lstrip("+")[:PREFIX_DIGITS]
    return hmac.new(identity_key, f"OTP-BLOCK:{block}".encode(), hashlib.sha256).hexdigest()


class PhoneLogin:
    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, tokens: TokenVerifier, sender: SmsSender
    ) -> None:
        self.pool, self.settings, self.tokens, self.sender = pool, settings, tokens, sender
        self.key = settings.identity_key_bytes
        self._reserving = asyncio.Semaphore(RESERVING_AT_ONCE)

    def _code_hash(self, key: str, code: str) -> str:
        return hmac.new(self.key, f"{key}:{code}".encode(), hashlib.sha256).hexdigest()

    def _require_enabled(self) -> None:
        if not self.tokens.can_issue:
            raise OtpDisabledError(
                "phone login is off: this server only checks tokens from an external login "
                "(VOTESTREAM_WEB_JWT_PUBLIC_KEY) and has no VOTESTREAM_WEB_JWT_SECRET to sign"
            )

    async def send_code(self, raw_phone: str) -> dict[str, Any]:
        self._require_enabled()
        phone = normalize_phone(raw_phone)
        key = phone_key(self.key, phone)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        ttl = self.settings.otp_ttl
        code_hash = self._code_hash(key, code)
        async with self._reserving:
            sent_at = await self._reserve(key, block_key(self.key, phone), code_hash)
        text = f"您的投票验证码是 {code}，{math.ceil(ttl / 60)} 分钟内有效。请勿告诉他人。"
        try:
            await self.sender.send(phone, text, phone_key=key, code=code)
        except Exception:
            # a gateway refusal leaves no code and no counted send
            await self._take_back(key, sent_at, code_hash)
            raise
        return {"sent": True, "expires_in": int(ttl)}

    async def _reserve(self, key: str, block: str, code_hash: str) -> datetime:
        """Checks every send limit and records the code and the send, in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            # one sender per phone at a time, across processes
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 4))", key)
            await self._check_send_limits(conn, key)
            await self._check_caps(conn, block)
            await conn.execute(
                "INSERT INTO otp_codes (phone_key, code_hash, expires_at, attempts_left)"
                " VALUES ($1, $2, now() + make_interval(secs => $3), $4)"
                " ON CONFLICT (phone_key) DO UPDATE SET code_hash = excluded.code_hash,"
                " expires_at = excluded.expires_at, attempts_left = excluded.attempts_left",
                key,
                code_hash,
                self.settings.otp_ttl,
                self.settings.otp_attempts,
            )
            sent_at: datetime = await conn.fetchval(
                "INSERT INTO otp_sends (phone_key, prefix_key) VALUES ($1, $2) RETURNING sent_at",
                key,
                block,
            )
        return sent_at

    async def _take_back(self, key: str, sent_at: datetime, code_hash: str) -> None:
        async with self._reserving, self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM otp_sends WHERE phone_key = $1 AND sent_at = $2", key, sent_at
            )
            await conn.execute(
                "DELETE FROM otp_codes WHERE phone_key = $1 AND code_hash = $2", key, code_hash
            )

    def _refused(self) -> RateLimitedError:
        """The one answer to every refused send: no reason, no phone-specific wait."""
        return RateLimitedError(TRY_LATER, retry_after=self.settings.otp_resend_interval)

    async def _check_send_limits(self, conn: asyncpg.Connection, key: str) -> None:
        # sends older than a day count for no limit, whichever phone they went to
        await conn.execute("DELETE FROM otp_sends WHERE sent_at < now() - $1::interval", DAY)
        row = await conn.fetchrow(
            "SELECT count(*) AS sends, extract(epoch FROM now() - max(sent_at)) AS since_last"
            " FROM otp_sends WHERE phone_key = $1",
            key,
        )
        interval = self.settings.otp_resend_interval
        if row["since_last"] is not None and row["since_last"] < interval:
            raise self._refused()
        if row["sends"] >= self.settings.otp_daily_sends:
            raise self._refused()

    async def _check_caps(self, conn: asyncpg.Connection, block: str) -> None:
        """The per-block and the global cap, exact across processes: each is counted under a
        lock held to the commit (taken after the phone's lock, block before global)."""
        block_cap = self.settings.otp_prefix_sends_per_minute
        if block_cap > 0:  # 0: switched off
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 4))", block)
            sends = await conn.fetchval(
                "SELECT count(*) FROM otp_sends WHERE prefix_key = $1"
                " AND sent_at > now() - $2::interval",
                block,
                MINUTE,
            )
            if sends >= block_cap:
                raise self._refused()
        global_cap = self.settings.otp_sends_per_minute
        if global_cap > 0:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 4))", ALL_SENDS)
            sends = await conn.fetchval(
                "SELECT count(*) FROM otp_sends WHERE sent_at > now() - $1::interval", MINUTE
            )
            if sends >= global_cap:
                raise self._refused()

    async def verify(self, raw_phone: str, code: str) -> dict[str, Any]:
        self._require_enabled()
        phone = normalize_phone(raw_phone)
        key = phone_key(self.key, phone)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT code_hash, attempts_left, expires_at > now() AS live"
                " FROM otp_codes WHERE phone_key = $1 FOR UPDATE",
                key,
            )
            refusal = self._refusal(row, key, code)
            if refusal == "wrong":
                await conn.execute(
                    "UPDATE otp_codes SET attempts_left = attempts_left - 1 WHERE phone_key = $1",
                    key,
                )
            elif row is not None:  # used, expired or out of attempts: the code is gone
                await conn.execute("DELETE FROM otp_codes WHERE phone_key = $1", key)
        if refusal is not None:  # raised after the commit, so the spent attempt stays spent
            raise OtpInvalidError(CODE_REFUSED)
        ttl = self.settings.web_token_ttl
        token = self.tokens.issue(f"phone:{key[:32]}", phone, ttl)
        return {"token": token, "expires_in": int(ttl)}

    def _refusal(self, row: asyncpg.Record | None, key: str, code: str) -> Refusal | None:
        if row is None or not row["live"]:
            return "no_code"
        if hmac.compare_digest(row["code_hash"], self._code_hash(key, code)):
            return None
        return "used_up" if row["attempts_left"] <= 1 else "wrong"
