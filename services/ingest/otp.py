"""Phone login: a one-time code by SMS, exchanged for a voter token whose `phone` is verified.

Codes are 6 digits, live VOTESTREAM_OTP_TTL seconds (300), allow VOTESTREAM_OTP_ATTEMPTS
wrong guesses (5) and work once. A phone gets one code per VOTESTREAM_OTP_RESEND_INTERVAL
(60 s) and VOTESTREAM_OTP_DAILY_SENDS (10) a day; those limits live in PostgreSQL so they
hold across ingest processes. The database sees only a pseudonymous phone key and an HMAC of
the code (both keyed with VOTESTREAM_IDENTITY_KEY). Tokens are HS256 with
VOTESTREAM_WEB_JWT_SECRET for VOTESTREAM_WEB_TOKEN_TTL seconds; with no secret (only a
public key) this login is switched off and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import timedelta
from typing import Any

import asyncpg

from services.domain.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from services.domain.voters import normalize_phone
from services.ingest.sms import SmsSender
from services.ingest.voters import TokenVerifier
from services.runtime.settings import Settings

CODE_DIGITS = 6
DAY = timedelta(days=1)


class OtpDisabledError(ForbiddenError):
    code = "otp_login_disabled"


class OtpInvalidError(UnauthorizedError):
    code = "otp_invalid"


def phone_key(identity_key: bytes, phone: str) -> str:
    """Pseudonymous key of an E.164 phone ("OTP:" cannot start a campaign id's voter key)."""
    return hmac.new(identity_key, f"OTP:{phone}".encode(), hashlib.sha256).hexdigest()


class PhoneLogin:
    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, tokens: TokenVerifier, sender: SmsSender
    ) -> None:
        self.pool, self.settings, self.tokens, self.sender = pool, settings, tokens, sender
        self.key = settings.identity_key_bytes

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
        async with self.pool.acquire() as conn, conn.transaction():
            # one sender per phone at a time, across processes
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 4))", key)
            await self._check_send_limits(conn, key)
            await conn.execute(
                "INSERT INTO otp_codes (phone_key, code_hash, expires_at, attempts_left)"
                " VALUES ($1, $2, now() + make_interval(secs => $3), $4)"
                " ON CONFLICT (phone_key) DO UPDATE SET code_hash = excluded.code_hash,"
                " expires_at = excluded.expires_at, attempts_left = excluded.attempts_left",
                key,
                self._code_hash(key, code),
                ttl,
                self.settings.otp_attempts,
            )
            await conn.execute("INSERT INTO otp_sends (phone_key) VALUES ($1)", key)
            # inside the transaction: a gateway refusal leaves no code and no counted send
            text = f"您的投票验证码是 {code}，{math.ceil(ttl / 60)} 分钟内有效。请勿告诉他人。"
            await self.sender.send(phone, text, phone_key=key, code=code)
        return {"sent": True, "expires_in": int(ttl)}

    async def _check_send_limits(self, conn: asyncpg.Connection, key: str) -> None:
        await conn.execute(
            "DELETE FROM otp_sends WHERE phone_key = $1 AND sent_at < now() - $2::interval",
            key,
            DAY,
        )
        row = await conn.fetchrow(
            "SELECT count(*) AS sends, extract(epoch FROM now() - max(sent_at)) AS since_last,"
            " extract(epoch FROM min(sent_at) + $2::interval - now()) AS until_slot"
            " FROM otp_sends WHERE phone_key = $1",
            key,
            DAY,
        )
        interval = self.settings.otp_resend_interval
        if row["since_last"] is not None and row["since_last"] < interval:
            wait = interval - float(row["since_last"])
            raise RateLimitedError("a code was just sent to this phone", retry_after=wait)
        if row["sends"] >= self.settings.otp_daily_sends:
            raise RateLimitedError(
                "too many codes for this phone today", retry_after=float(row["until_slot"])
            )

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
            if refusal is not None and refusal.code == "otp_wrong":
                await conn.execute(
                    "UPDATE otp_codes SET attempts_left = attempts_left - 1 WHERE phone_key = $1",
                    key,
                )
            elif row is not None:  # used, expired or out of attempts: the code is gone
                await conn.execute("DELETE FROM otp_codes WHERE phone_key = $1", key)
        if refusal is not None:  # raised after the commit, so the spent attempt stays spent
            raise refusal
        ttl = self.settings.web_token_ttl
        token = self.tokens.issue(f"phone:{key[:32]}", phone, ttl)
        return {"token": token, "expires_in": int(ttl)}

    def _refusal(self, row: asyncpg.Record | None, key: str, code: str) -> OtpInvalidError | None:
        if row is None or not row["live"]:
            return OtpInvalidError("no valid code for this phone: request a new one")
        if hmac.compare_digest(row["code_hash"], self._code_hash(key, code)):
            return None
        if row["attempts_left"] <= 1:
            message = "wrong code, and no attempts are left: request a new one"
            return OtpInvalidError(message, code="otp_attempts_exhausted")
        return OtpInvalidError("wrong code", code="otp_wrong")
