"""Voter tokens from the site's own login: verified strictly, turned into a voter key at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from services.domain.errors import UnauthorizedError
from services.domain.voters import voter_key, web_identity

LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class VoterToken:
    sub: str
    phone: str | None
    issued_at: datetime | None
    channel: str  # "web", or "wechat" for sessions started by WeChat OAuth


class TokenVerifier:
    """HS256 with a shared secret, or RS256/EdDSA with a public key — never both, never none."""

    def __init__(self, secret: str, public_key: str | None = None) -> None:
        if public_key:
            self.key: Any = public_key
            self.algorithms = ["RS256", "EdDSA"]
        else:
            self.key = secret
            self.algorithms = ["HS256"]

    def verify(self, authorization: str | None) -> VoterToken:
        if not self.key:
            raise UnauthorizedError(
                "web voting is not configured on this server", code="web_voting_disabled"
            )
        if not authorization or not authorization.startswith("Bearer "):
            raise UnauthorizedError(
                "a voter token is required (Authorization: Bearer ...)", code="missing_token"
            )
        try:
            claims = jwt.decode(
                authorization[7:].strip(),
                self.key,
                algorithms=self.algorithms,
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("the voter token has expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"invalid voter token: {exc}", code="invalid_token") from exc
        sub, phone = claims.get("sub"), claims.get("phone")
        if (
            not isinstance(sub, str)
            or not sub
            or (phone is not None and not isinstance(phone, str))
        ):
            raise UnauthorizedError("invalid voter token claims", code="invalid_token")
        iat = claims.get("iat")
        issued = datetime.fromtimestamp(iat, UTC) if isinstance(iat, int | float) else None
        channel = "wechat" if claims.get("chn") == "wechat" else "web"
        return VoterToken(sub=sub, phone=phone, issued_at=issued, channel=channel)


def token_voter_key(identity_key: bytes, campaign_id: str, token: VoterToken) -> str:
    if token.channel == "wechat":
        return voter_key(identity_key, campaign_id, token.sub)  # sub is already "wechat:<openid>"
    return voter_key(identity_key, campaign_id, web_identity(token.sub, token.phone))
