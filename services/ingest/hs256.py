"""The quick check of a plain HS256 voter token: a yes, or "ask PyJWT".

PyJWT's `jwt.decode` costs ~34 µs a token, a tenth of a web ballot's CPU: on every call it
prepares the HMAC key again (its PEM, SSH and DER refusals included), checks each base64url
character in Python and parses the JSON three times. Almost every token at the peak is the
same plain shape: a header of `alg` HS256 with at most `typ` and `kid`, integer `exp` (and
`iat`), string claims. `accept` answers those in a few µs, with the key prepared once.

It only ever says yes to a token PyJWT would accept with the same options, with the same
claims; anything else at all (a bad signature, an expired token, an `nbf`, a padded
segment, a list audience, JSON only the standard library reads) returns None, and the
caller asks PyJWT, which accepts it or refuses it with its precise error. So refusals and
unusual tokens take exactly the path they took before; tests/unit/test_hs256.py checks
the two agree on valid, tampered and odd tokens.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidKeyError

_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*")  # unpadded base64url, as issuers write it
_PLAIN_HEADER_KEYS = frozenset({"alg", "typ", "kid"})


@dataclass(frozen=True)
class QuickHS256:
    """The HS256 check of one key and one set of options, all resolved at start."""

    key: bytes
    audience: str | None
    issuer: str | None
    required: tuple[str, ...]
    leeway: float

    @classmethod
    def for_secret(
        cls,
        secret: str,
        *,
        audience: str | None,
        issuer: str | None,
        required: tuple[str, ...],
        leeway: float,
    ) -> QuickHS256 | None:
        """None when PyJWT would refuse or warn about the key: then it sees every token."""
        algorithm = HMACAlgorithm(HMACAlgorithm.SHA256)
        try:
            key = algorithm.prepare_key(secret)
        except InvalidKeyError:
            return None
        if algorithm.check_key_length(key) is not None:
            return None
        return cls(key, audience, issuer, required, leeway)

    def accept(self, token: str) -> dict[str, Any] | None:
        """The token's claims if it is a plain, valid HS256 token; None: ask PyJWT."""
        if not token.isascii():  # then each character is one byte of the signed input
            return None
        header, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if not _plain_hs256_header(header):
            return None
        signing_input = token[: len(header) + 1 + len(payload)].encode()
        digest = hmac.new(self.key, signing_input, hashlib.sha256).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=")
        if not hmac.compare_digest(expected, signature.encode()):
            return None
        data = _decoded(payload.encode())
        claims = None if data is None else _json_object(data)
        if claims is None or not self._valid(claims, time.time()):
            return None
        return claims

    def _valid(self, claims: dict[str, Any], now: float) -> bool:
        if any(claims.get(name) is None for name in self.required):
            return False
        exp, iat = claims.get("exp"), claims.get("iat", 0)
        if type(exp) is not int or exp <= now - self.leeway:
            return False
        if type(iat) is not int or iat > now + self.leeway or "nbf" in claims:
            return False
        if self.issuer is not None and claims.get("iss") != self.issuer:
            return False
        if self.audience is None:
            if "aud" in claims:
                return False
        elif claims.get("aud") not in (self.audience, [self.audience]):
            return False
        return all(type(claims.get(name, "")) is str for name in ("sub", "jti"))


def _decoded(segment: bytes) -> bytes | None:
    """The bytes of a segment in canonical, unpadded base64url (what PyJWT also demands)."""
    if len(segment) % 4 == 1 or not _SEGMENT.fullmatch(segment):
        return None
    try:
        data = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except binascii.Error:
        return None
    return data if base64.urlsafe_b64encode(data).rstrip(b"=") == segment else None


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


@functools.lru_cache(maxsize=64)
def _plain_hs256_header(segment: str) -> bool:
    """Whether the header is {"alg": "HS256"} with at most `typ` and `kid` (a string).
    An issuer sends the same header on every token: it is read once."""
    data = _decoded(segment.encode())
    try:
        header = None if data is None else json.loads(data)
    except ValueError:  # not JSON, or not UTF-8
        return False
    return (
        type(header) is dict
        and header.keys() <= _PLAIN_HEADER_KEYS
        and header.get("alg") == "HS256"
        and type(header.get("kid", "")) is str
    )
