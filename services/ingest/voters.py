"""Voter tokens from the site's own login: verified strictly, turned into a voter key at once.

Keys (SPEC §2): `VOTESTREAM_WEB_JWT_SECRET` checks HS256 tokens (and signs the ones the
phone login issues); `VOTESTREAM_WEB_JWT_PUBLIC_KEY` — PEM text, or the path of a PEM file —
checks RS256 (RSA key) or EdDSA (Ed25519 key) tokens from an external login. Each accepted
algorithm is bound to its own key, so a token can never choose how it is checked: `none`,
an HS256 token "signed" with the public key, or an RS256 token without a public key are all
refused. `exp` and `sub` are required, with LEEWAY_SECONDS of clock skew allowed.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.domain.ballot import Channel
from services.domain.errors import MalformedError, SettingsError, UnauthorizedError
from services.domain.voters import normalize_phone, voter_key, web_identity

LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class VoterToken:
    sub: str
    phone: str | None  # verified, E.164
    issued_at: datetime | None
    channel: Channel  # "web", or "wechat" for sessions started by WeChat OAuth
    campaign: str | None = None  # WeChat sessions: the one campaign their `sub` is a key for


def load_public_key(value: str) -> tuple[str, Any]:
    """(algorithm, key) for a PEM public key given as text or as a file path."""
    pem = value if value.lstrip().startswith("-----BEGIN") else Path(value).read_text()
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise SettingsError("VOTESTREAM_WEB_JWT_PUBLIC_KEY is not a PEM public key") from exc
    if isinstance(key, RSAPublicKey):
        return "RS256", key
    if isinstance(key, Ed25519PublicKey):
        return "EdDSA", key
    raise SettingsError("VOTESTREAM_WEB_JWT_PUBLIC_KEY must be an RSA or Ed25519 key")


class TokenVerifier:
    """HS256 with the shared secret and/or RS256|EdDSA with the public key; never `none`."""

    def __init__(self, secret: str, public_key: str | None = None) -> None:
        self.keys: dict[str, Any] = {}
        if secret:
            self.keys["HS256"] = secret
        if public_key:
            algorithm, key = load_public_key(public_key)
            self.keys[algorithm] = key

    @property
    def can_issue(self) -> bool:
        return "HS256" in self.keys

    def issue(self, sub: str, phone: str | None, ttl: float) -> str:
        """A voter token signed with the shared secret (the phone login's tokens)."""
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + int(ttl)}
        if phone:
            claims["phone"] = phone
        return jwt.encode(claims, self.keys["HS256"], algorithm="HS256")

    def verify(self, authorization: str | None) -> VoterToken:
        if not self.keys:
            raise UnauthorizedError(
                "web voting is not configured on this server", code="web_voting_disabled"
            )
        if not authorization or not authorization.startswith("Bearer "):
            raise UnauthorizedError(
                "a voter token is required (Authorization: Bearer ...)", code="missing_token"
            )
        claims = self._decode(authorization[7:].strip())
        sub, phone = claims.get("sub"), claims.get("phone")
        if not isinstance(sub, str) or not sub or not (phone is None or isinstance(phone, str)):
            raise UnauthorizedError("invalid voter token claims", code="invalid_token")
        iat = claims.get("iat")
        issued = datetime.fromtimestamp(iat, UTC) if isinstance(iat, int | float) else None
        channel: Channel = "wechat" if claims.get("chn") == "wechat" else "web"
        cid = claims.get("cid") if isinstance(claims.get("cid"), str) else None
        return VoterToken(
            sub=sub, phone=_verified_phone(phone), issued_at=issued, channel=channel, campaign=cid
        )

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            algorithm = _algorithm_named_by(token.partition(".")[0])
            key = self.keys.get(algorithm)
            if key is None:
                raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("the voter token has expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"invalid voter token: {exc}", code="invalid_token") from exc
        return claims


@functools.lru_cache(maxsize=64)
def _algorithm_named_by(header_segment: str) -> str:
    """The `alg` of a token's header segment. An issuer sends the same header on every
    token, so it is parsed once, not before each `jwt.decode` (which checks it again)."""
    return str(jwt.get_unverified_header(f"{header_segment}..").get("alg"))


def _verified_phone(phone: str | None) -> str | None:
    if phone is None:
        return None
    try:
        return normalize_phone(phone)
    except MalformedError as exc:
        raise UnauthorizedError("the token's phone is not E.164", code="invalid_token") from exc


def token_voter_key(identity_key: bytes, campaign_id: str, token: VoterToken) -> str:
    if token.channel == "wechat":
        # The browser never sees the openid: WeChat OAuth puts the voter key itself in `sub`
        # (the key the WeChat text channel computes), valid only for the campaign in `cid`.
        if token.campaign != campaign_id:
            raise UnauthorizedError(
                "this WeChat session is for another campaign", code="token_wrong_campaign"
            )
        return token.sub
    return voter_key(identity_key, campaign_id, web_identity(token.sub, token.phone))
