"""Voter tokens: verified strictly, turned into a voter key at once.

Keys (docs/WEB_CHANNEL.md): `VOTESTREAM_WEB_JWT_SECRET` checks HS256 tokens (and signs the ones this
server issues); `VOTESTREAM_WEB_JWT_PUBLIC_KEY` — PEM text, or the path of a PEM file —
checks RS256 (RSA key) or EdDSA (Ed25519 key) tokens from an external login. Each accepted
algorithm is bound to its own key, so a token can never choose how it is checked: `none`,
an HS256 token "signed" with the public key, or an RS256 token without a public key are all
refused. `exp` and `sub` are required, with LEEWAY_SECONDS of clock skew allowed.

Two kinds of token, told apart before any claim is trusted:
- a site's token (its own login): `sub` and an optional verified `phone` name the voter.
  With a public key its `aud` and `iss` must be VOTESTREAM_WEB_JWT_AUDIENCE and
  VOTESTREAM_WEB_JWT_ISSUER (required then: an external login usually serves many
  applications, and a token it issued for another one must not vote here). HS256 site
  tokens are checked against them when they are set.
- this server's own token (phone login, WeChat sessions): header `kid` OWN, `iss` and `aud`
  OWN, and a `typ` naming its kind. Only an own `wechat_session` counts `chn`/`cid`: its
  `sub` is already a voter key. A site's token never does, so a site can never pick a voter
  key verbatim: `chn` is reserved (a site's token with it is refused, which also sends
  WeChat sessions signed before own tokens existed back through OAuth, to the same key),
  and `cid` is ignored (logins often use it for their client id).
Keys and the options of each check are resolved once, when the verifier is built at start;
plain HS256 tokens are checked without PyJWT's per-call work (hs256.py), and anything else
such a check does not accept goes through PyJWT, which decides.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
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
from services.ingest.hs256 import QuickHS256
from services.runtime.settings import Settings

LEEWAY_SECONDS = 30
OWN = "votestream"  # `kid`, `iss` and `aud` of the tokens this server issues
PHONE_LOGIN = "voter"  # `typ` of a token earned by phone login
WECHAT_SESSION = "wechat_session"  # `typ` of a WeChat OAuth session (sub = voter key)
OWN_TYPES = frozenset({PHONE_LOGIN, WECHAT_SESSION})


@dataclass(frozen=True)
class VoterToken:
    sub: str
    phone: str | None  # verified, E.164
    issued_at: datetime | None
    channel: Channel  # "web", or "wechat" for sessions started by WeChat OAuth
    campaign: str | None = None  # WeChat sessions: the one campaign their `sub` is a key for


@dataclass(frozen=True)
class _Check:
    """How tokens of one algorithm and issuer are checked, fixed at start."""

    key: Any
    algorithm: str
    audience: str | None = None
    issuer: str | None = None
    own: bool = False
    required: tuple[str, ...] = ("sub", "exp")
    quick: QuickHS256 | None = field(init=False, default=None)  # plain HS256 tokens' path

    def __post_init__(self) -> None:
        if self.algorithm == "HS256":
            quick = QuickHS256.for_secret(
                self.key,
                audience=self.audience,
                issuer=self.issuer,
                required=self.required,
                leeway=LEEWAY_SECONDS,
            )
            object.__setattr__(self, "quick", quick)

    def decode(self, token: str) -> dict[str, Any]:
        if self.quick is not None and (claims := self.quick.accept(token)) is not None:
            return claims
        claims = jwt.decode(
            token,
            self.key,
            algorithms=[self.algorithm],
            audience=self.audience,
            issuer=self.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": list(self.required)},
        )
        return claims


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


def sign_own_token(
    secret: str, typ: str, sub: str, ttl: float, *, now: float | None = None, **claims: Any
) -> str:
    """A token of this server's own (`typ` one of OWN_TYPES), HS256 with the shared secret."""
    issued = int(time.time() if now is None else now)
    body = {**claims, "sub": sub, "typ": typ, "iss": OWN, "aud": OWN}
    body.update(iat=issued, exp=issued + int(ttl))
    return jwt.encode(body, secret, algorithm="HS256", headers={"kid": OWN})


class TokenVerifier:
    """HS256 with the shared secret and/or RS256|EdDSA with the public key; never `none`."""

    def __init__(
        self,
        secret: str,
        public_key: str | None = None,
        *,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self.secret = secret
        self._site: dict[str, _Check] = {}
        self._own: _Check | None = None
        if secret:
            self._site["HS256"] = _Check(secret, "HS256", audience, issuer)
            own_claims = ("sub", "exp", "typ", "iss", "aud")
            self._own = _Check(secret, "HS256", OWN, OWN, own=True, required=own_claims)
        if public_key:
            algorithm, key = load_public_key(public_key)
            for value, name in ((audience, "AUDIENCE"), (issuer, "ISSUER")):
                if not value:
                    raise SettingsError(
                        f"VOTESTREAM_WEB_JWT_{name} is not set: tokens checked with "
                        "VOTESTREAM_WEB_JWT_PUBLIC_KEY must name this service (aud) and "
                        "their login (iss)"
                    )
            external = ("sub", "exp", "aud", "iss")
            self._site[algorithm] = _Check(key, algorithm, audience, issuer, required=external)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        return cls(
            settings.web_jwt_secret,
            settings.web_jwt_public_key,
            audience=settings.web_jwt_audience,
            issuer=settings.web_jwt_issuer,
        )

    @property
    def can_issue(self) -> bool:
        return bool(self.secret)

    def issue(self, sub: str, phone: str | None, ttl: float) -> str:
        """A phone login's voter token, signed with the shared secret."""
        extra: dict[str, Any] = {"phone": phone} if phone else {}
        return sign_own_token(self.secret, PHONE_LOGIN, sub, ttl, **extra)

    def verify(self, authorization: str | None) -> VoterToken:
        if not self._site:
            raise UnauthorizedError(
                "web voting is not configured on this server", code="web_voting_disabled"
            )
        if not authorization or not authorization.startswith("Bearer "):
            raise UnauthorizedError(
                "a voter token is required (Authorization: Bearer ...)", code="missing_token"
            )
        check, claims = self._decode(authorization[7:].strip())
        sub, phone = claims.get("sub"), claims.get("phone")
        if not isinstance(sub, str) or not sub or not (phone is None or isinstance(phone, str)):
            raise UnauthorizedError("invalid voter token claims", code="invalid_token")
        iat = claims.get("iat")
        issued = datetime.fromtimestamp(iat, UTC) if isinstance(iat, int | float) else None
        if check.own and claims["typ"] == WECHAT_SESSION:
            cid = claims.get("cid")
            if claims.get("chn") != "wechat" or not isinstance(cid, str):
                raise UnauthorizedError("invalid WeChat session claims", code="invalid_token")
            return VoterToken(sub, None, issued, "wechat", cid)
        if not check.own and "chn" in claims:
            raise UnauthorizedError(
                "the chn claim is reserved for this server's own sessions", code="invalid_token"
            )
        return VoterToken(sub=sub, phone=_verified_phone(phone), issued_at=issued, channel="web")

    def _decode(self, token: str) -> tuple[_Check, dict[str, Any]]:
        try:
            algorithm, kid = _header_of(token.partition(".")[0])
            check = self._own if (algorithm, kid) == ("HS256", OWN) else self._site.get(algorithm)
            if check is None:
                raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted")
            claims = check.decode(token)
            if check.own and claims["typ"] not in OWN_TYPES:
                raise jwt.InvalidTokenError("unknown token type")
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("the voter token has expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"invalid voter token: {exc}", code="invalid_token") from exc
        return check, claims


@functools.lru_cache(maxsize=64)
def _header_of(header_segment: str) -> tuple[str, str | None]:
    """The `alg` and `kid` of a token's header segment. An issuer sends the same header on
    every token, so it is parsed once, not before each `jwt.decode` (which checks it again)."""
    header = jwt.get_unverified_header(f"{header_segment}..")
    kid = header.get("kid")
    return str(header.get("alg")), kid if isinstance(kid, str) else None


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
        # Only this server's own sessions have this channel (TokenVerifier.verify).
        if token.campaign != campaign_id:
            raise UnauthorizedError(
                "this WeChat session is for another campaign", code="token_wrong_campaign"
            )
        return token.sub
    return voter_key(identity_key, campaign_id, web_identity(token.sub, token.phone))
