"""The quick HS256 check says yes only where PyJWT says yes, with the same claims: on plain
valid tokens, on tokens with odd claims or headers, and on tampered ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.hs256 import QuickHS256

SECRET = "unit-secret-" + "s" * 32
LEEWAY = 30
REQUIRED = ("sub", "exp")
NOW = int(time.time())
MISSING = object()
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def quick(audience: str | None = None, issuer: str | None = None) -> QuickHS256:
    check = QuickHS256.for_secret(
        SECRET, audience=audience, issuer=issuer, required=REQUIRED, leeway=LEEWAY
    )
    assert check is not None
    return check


def pyjwt(token: str, audience: str | None, issuer: str | None) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY,
            options={"require": list(REQUIRED)},
        )
    except jwt.PyJWTError:
        return None
    return claims


ODD_CLAIMS: dict[str, list[Any]] = {
    "sub": [MISSING, "", 7, None],
    "exp": [MISSING, NOW - 10, NOW - 600, float(NOW + 600), str(NOW + 600), True, None],
    "iat": [MISSING, NOW + 10, NOW + 600, float(NOW), "now", None],
    "nbf": [NOW, NOW + 600],
    "aud": [MISSING, "ingest", ["ingest"], ["ingest", "other"], "other", [], "", None, [None]],
    "iss": [MISSING, "login", "other", 5, None],
    "jti": ["j-1", 3],
    "chn": ["wechat"],
}
ODD_HEADERS: list[dict[str, Any]] = [
    {"kid": "votestream"},
    {"kid": 5},
    {"typ": "at+jwt"},
    {"alg": "HS384"},
    {"alg": "none"},
    {"crit": ["b64"], "b64": False},
    {"x5u": "https://example.invalid/key"},
]
TAMPERINGS = [
    "flip_payload",
    "flip_signature",
    "pad",
    "extra_segment",
    "non_canonical_signature",
    "json_header",
    "non_canonical_payload",
]
# One thing odd at a time (the rest valid), so that each oddity meets the quick path
oddities = st.one_of(
    st.just(("nothing", None)),
    st.tuples(st.just("claim"), st.sampled_from(sorted(ODD_CLAIMS))).flatmap(
        lambda c: st.tuples(st.just(c[1]), st.sampled_from(ODD_CLAIMS[c[1]]))
    ),
    st.tuples(st.just("header"), st.sampled_from(ODD_HEADERS)),
    st.tuples(st.just("key"), st.just("another-secret-" + "t" * 32)),
    st.tuples(st.just("tamper"), st.sampled_from(TAMPERINGS)),
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(headers: dict[str, Any], claims: dict[str, Any], key: str, how: str = "none") -> str:
    """A token signed by hand: PyJWT's encode refuses some of the odd claims tested here."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", **headers}).encode())
    payload = b64(json.dumps(claims).encode())
    if how == "non_canonical_payload" and len(payload) % 4:  # unused low bits set, signed
        payload = payload[:-1] + B64_ALPHABET[B64_ALPHABET.index(payload[-1]) | 1]
    signing_input = f"{header}.{payload}"
    digest = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(digest)}"


def tamper(token: str, how: str) -> str:
    header, payload, signature = token.split(".")
    if how == "flip_payload":
        payload = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    elif how == "flip_signature":
        signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    elif how == "pad":
        payload += "=" * (-len(payload) % 4)
    elif how == "extra_segment":
        signature += ".e30"
    elif how == "non_canonical_signature":  # the last character's unused bits set
        last = signature[-1]
        signature = signature[:-1] + ("B" if last == "A" else chr(ord(last) | 1))
    elif how == "json_header":
        header = b64(b'{"alg":"HS256","alg":"none"}')
    return ".".join((header, payload, signature))


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(
    oddity=oddities,
    audience=st.sampled_from([None, "ingest"]),
    issuer=st.sampled_from([None, "login"]),
)
def test_the_quick_check_accepts_only_what_pyjwt_accepts_with_the_same_claims(
    oddity: tuple[str, Any], audience: str | None, issuer: str | None
) -> None:
    claims: dict[str, Any] = {"sub": "voter-1", "exp": NOW + 600, "iat": NOW}
    claims |= {"aud": audience} if audience else {}
    claims |= {"iss": issuer} if issuer else {}
    headers: dict[str, Any] = {}
    key, how = SECRET, "none"
    what, value = oddity
    if what == "header":
        headers = value
    elif what == "key":
        key = value
    elif what == "tamper":
        how = value
    elif what in ODD_CLAIMS:
        claims[what] = value
        if value is MISSING:
            del claims[what]
    token = tamper(sign(headers, claims, key, how), how)
    answer = quick(audience, issuer).accept(token)
    if answer is not None:
        assert answer == pyjwt(token, audience, issuer)


@pytest.mark.parametrize(
    ("audience", "issuer", "extra"),
    [
        (None, None, {}),
        (None, None, {"phone": "+8613800138000", "typ": "voter", "iss": "x", "jti": "j"}),
        ("ingest", "login", {"aud": "ingest", "iss": "login"}),
        ("ingest", "login", {"aud": ["ingest"], "iss": "login"}),
    ],
)
def test_a_plain_valid_token_takes_the_quick_path_with_pyjwts_claims(
    audience: str | None, issuer: str | None, extra: dict[str, Any]
) -> None:
    now = int(time.time())
    claims = {"sub": "voter-1", "iat": now, "exp": now + 600, **extra}
    for headers in ({}, {"kid": "votestream"}):
        token = jwt.encode(claims, SECRET, algorithm="HS256", headers=headers)
        answer = quick(audience, issuer).accept(token)
        assert answer is not None
        assert answer == pyjwt(token, audience, issuer) == claims


@pytest.mark.parametrize(
    ("case", "claims"),
    [
        ("expired beyond the leeway", {"sub": "v", "exp": NOW - LEEWAY - 5}),
        ("issued in the future", {"sub": "v", "exp": NOW + 600, "iat": NOW + 600}),
        ("no sub", {"exp": NOW + 600}),
        ("an audience nobody asked for", {"sub": "v", "exp": NOW + 600, "aud": [None]}),
    ],
)
def test_a_token_pyjwt_refuses_never_takes_the_quick_path(
    case: str, claims: dict[str, Any]
) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert pyjwt(token, None, None) is None, case
    assert quick().accept(token) is None, case


def test_a_key_pyjwt_would_warn_about_gets_no_quick_path() -> None:
    short = QuickHS256.for_secret("short", audience=None, issuer=None, required=(), leeway=0)
    assert short is None
