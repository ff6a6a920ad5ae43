"""Voter tokens: every way a token is accepted or refused (services/ingest/voters.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from services.domain.errors import SettingsError, UnauthorizedError
from services.ingest.voters import TokenVerifier, token_voter_key
from tests.unit.web_fakes import SECRET, voter_token

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = (
    RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
ED_PUBLIC_PEM = (
    ED_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A JWT built without PyJWT's guards, as an attacker would build it."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if hmac_key is None:
        return signing_input + "."
    signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "voter-1", "iat": now, "exp": now + 600, **extra}


def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(UnauthorizedError) as caught:
        verifier.verify(f"Bearer {token}")
    return caught.value.code


HS = TokenVerifier(SECRET)


def test_a_valid_hs256_token_gives_its_subject() -> None:
    token = HS.verify(f"Bearer {voter_token('alice')}")
    assert (token.sub, token.phone, token.channel) == ("alice", None, "web")
    assert token.issued_at is not None


def test_a_verified_phone_becomes_the_voters_identity_whatever_the_subject() -> None:
    one = HS.verify(f"Bearer {voter_token('a', phone='13800138000')}")
    other = HS.verify(f"Bearer {voter_token('b', phone='+8613800138000')}")
    assert one.phone == other.phone == "+8613800138000"
    assert token_voter_key(b"k", "c", one) == token_voter_key(b"k", "c", other)
    plain = HS.verify(f"Bearer {voter_token('a')}")
    assert token_voter_key(b"k", "c", plain) != token_voter_key(b"k", "c", one)


def test_a_phone_claim_that_is_not_a_phone_number_is_refused() -> None:
    assert refusal(HS, voter_token(phone="call me")) == "invalid_token"


def test_expiry_allows_a_small_clock_skew_and_no_more() -> None:
    assert HS.verify(f"Bearer {voter_token(ttl=-10)}").sub == "voter-1"
    assert refusal(HS, voter_token(ttl=-60)) == "token_expired"


def test_a_token_not_yet_valid_beyond_the_skew_is_refused() -> None:
    assert refusal(HS, voter_token(nbf=int(time.time()) + 300)) == "invalid_token"


@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_sub_and_exp_are_required(missing: str) -> None:
    body = claims()
    del body[missing]
    assert refusal(HS, jwt.encode(body, SECRET, algorithm="HS256")) == "invalid_token"


def test_a_wrong_signature_is_refused() -> None:
    assert refusal(HS, voter_token(key="a-different-secret-at-least-32-bytes-long")) == (
        "invalid_token"
    )


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_unsigned_token_alg_none_is_refused(alg: str) -> None:
    assert refusal(HS, hand_made({"alg": alg, "typ": "JWT"}, claims(), None)) == "invalid_token"


@pytest.mark.parametrize("secret", ["", SECRET])
def test_an_hs256_token_signed_with_the_public_key_is_refused(secret: str) -> None:
    verifier = TokenVerifier(secret, RSA_PUBLIC_PEM)
    forged = hand_made({"alg": "HS256", "typ": "JWT"}, claims(), RSA_PUBLIC_PEM.encode())
    assert refusal(verifier, forged) == "invalid_token"


def test_rs256_tokens_are_checked_with_the_configured_rsa_key() -> None:
    verifier = TokenVerifier("", RSA_PUBLIC_PEM)
    assert verifier.verify("Bearer " + jwt.encode(claims(), RSA_KEY, algorithm="RS256")).sub
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refusal(verifier, jwt.encode(claims(), other, algorithm="RS256")) == "invalid_token"
    assert refusal(verifier, voter_token()) == "invalid_token"  # HS256: no secret configured


def test_eddsa_tokens_are_checked_with_the_configured_ed25519_key(tmp_path: Path) -> None:
    path = tmp_path / "voters.pem"
    path.write_text(ED_PUBLIC_PEM)
    verifier = TokenVerifier("", str(path))  # a path works as well as the PEM text
    assert verifier.verify("Bearer " + jwt.encode(claims(), ED_KEY, algorithm="EdDSA")).sub
    assert refusal(verifier, jwt.encode(claims(), RSA_KEY, algorithm="RS256")) == "invalid_token"
    other = ed25519.Ed25519PrivateKey.generate()
    assert refusal(verifier, jwt.encode(claims(), other, algorithm="EdDSA")) == "invalid_token"


def test_both_keys_accept_both_kinds_each_with_its_own_key() -> None:
    verifier = TokenVerifier(SECRET, ED_PUBLIC_PEM)
    assert verifier.verify(f"Bearer {voter_token()}").sub
    assert verifier.verify("Bearer " + jwt.encode(claims(), ED_KEY, algorithm="EdDSA")).sub


def test_a_public_key_that_is_not_pem_stops_the_start() -> None:
    with pytest.raises(SettingsError):
        TokenVerifier("", "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n")
    private_pem = ED_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    with pytest.raises(SettingsError):
        TokenVerifier("", private_pem)


def test_no_key_at_all_means_web_voting_is_off() -> None:
    assert refusal(TokenVerifier(""), voter_token()) == "web_voting_disabled"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Token abc", "bearer x"])
def test_a_missing_bearer_token_is_refused(header: str | None) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        HS.verify(header)
    assert caught.value.code in ("missing_token", "invalid_token")


def test_issued_tokens_verify_and_carry_the_phone() -> None:
    token = HS.verify("Bearer " + HS.issue("phone:abc", "+8613800138000", 600))
    assert (token.sub, token.phone) == ("phone:abc", "+8613800138000")
    assert not TokenVerifier("", ED_PUBLIC_PEM).can_issue
