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
from services.domain.voters import voter_key, web_identity
from services.ingest.voters import (
    OWN,
    WECHAT_SESSION,
    TokenVerifier,
    sign_own_token,
    token_voter_key,
)
from services.runtime.settings import Settings
from tests.unit.web_fakes import SECRET, SITE_AUDIENCE, SITE_ISSUER, voter_token

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


def site_claims(**extra: Any) -> dict[str, Any]:
    """Claims as the city's external login issues them for this service."""
    return claims(aud=SITE_AUDIENCE, iss=SITE_ISSUER, **extra)


def external(public_key: str, secret: str = "") -> TokenVerifier:
    return TokenVerifier(secret, public_key, audience=SITE_AUDIENCE, issuer=SITE_ISSUER)


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
    verifier = external(RSA_PUBLIC_PEM, secret)
    forged = hand_made({"alg": "HS256", "typ": "JWT"}, claims(), RSA_PUBLIC_PEM.encode())
    assert refusal(verifier, forged) == "invalid_token"


def test_rs256_tokens_are_checked_with_the_configured_rsa_key() -> None:
    verifier = external(RSA_PUBLIC_PEM)
    assert verifier.verify("Bearer " + jwt.encode(site_claims(), RSA_KEY, algorithm="RS256")).sub
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refusal(verifier, jwt.encode(site_claims(), other, algorithm="RS256")) == (
        "invalid_token"
    )
    assert refusal(verifier, voter_token()) == "invalid_token"  # HS256: no secret configured


def test_eddsa_tokens_are_checked_with_the_configured_ed25519_key(tmp_path: Path) -> None:
    path = tmp_path / "voters.pem"
    path.write_text(ED_PUBLIC_PEM)
    verifier = external(str(path))  # a path works as well as the PEM text
    assert verifier.verify("Bearer " + jwt.encode(site_claims(), ED_KEY, algorithm="EdDSA")).sub
    rsa_token = jwt.encode(site_claims(), RSA_KEY, algorithm="RS256")
    assert refusal(verifier, rsa_token) == "invalid_token"
    other = ed25519.Ed25519PrivateKey.generate()
    assert refusal(verifier, jwt.encode(site_claims(), other, algorithm="EdDSA")) == (
        "invalid_token"
    )


def test_both_keys_accept_both_kinds_each_with_its_own_key() -> None:
    verifier = external(ED_PUBLIC_PEM, SECRET)
    assert verifier.verify(f"Bearer {voter_token(aud=SITE_AUDIENCE, iss=SITE_ISSUER)}").sub
    assert verifier.verify("Bearer " + jwt.encode(site_claims(), ED_KEY, algorithm="EdDSA")).sub


def test_a_public_key_that_is_not_pem_stops_the_start() -> None:
    with pytest.raises(SettingsError):
        external("-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n")
    private_pem = ED_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    with pytest.raises(SettingsError):
        external(private_pem)


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
    assert not external(ED_PUBLIC_PEM).can_issue


@pytest.mark.parametrize(
    ("setting", "missing"),
    [
        ({"web_jwt_issuer": SITE_ISSUER}, "VOTESTREAM_WEB_JWT_AUDIENCE"),
        ({"web_jwt_audience": SITE_AUDIENCE}, "VOTESTREAM_WEB_JWT_ISSUER"),
    ],
)
def test_a_public_key_without_audience_and_issuer_stops_the_start(
    setting: dict[str, Any], missing: str
) -> None:
    settings = Settings(web_jwt_public_key=RSA_PUBLIC_PEM, **setting)
    with pytest.raises(SettingsError, match=missing):
        TokenVerifier.from_settings(settings)


@pytest.mark.parametrize(
    ("site_claim", "code"),
    [
        ({"aud": None, "iss": None}, "invalid_token"),
        ({"aud": None}, "invalid_token"),
        ({"iss": None}, "invalid_token"),
        ({"aud": "another-app"}, "invalid_token"),
        ({"iss": "https://login.elsewhere.example"}, "invalid_token"),
    ],
)
def test_an_external_token_must_name_this_service_and_the_configured_login(
    site_claim: dict[str, str | None], code: str
) -> None:
    verifier = TokenVerifier.from_settings(
        Settings(
            web_jwt_public_key=RSA_PUBLIC_PEM,
            web_jwt_audience=SITE_AUDIENCE,
            web_jwt_issuer=SITE_ISSUER,
        )
    )
    body = {k: v for k, v in {**site_claims(), **site_claim}.items() if v is not None}
    assert refusal(verifier, jwt.encode(body, RSA_KEY, algorithm="RS256")) == code
    assert verifier.verify("Bearer " + jwt.encode(site_claims(), RSA_KEY, algorithm="RS256")).sub


def test_hs256_site_tokens_are_held_to_the_audience_when_one_is_configured() -> None:
    verifier = TokenVerifier(SECRET, audience=SITE_AUDIENCE, issuer=SITE_ISSUER)
    assert refusal(verifier, voter_token(aud="another-app")) == "invalid_token"
    assert verifier.verify(f"Bearer {voter_token(aud=SITE_AUDIENCE, iss=SITE_ISSUER)}").sub


WECHAT_CLAIMS: dict[str, Any] = {"chn": "wechat", "cid": "zibo"}


def site_token(kind: str, sub: str, **extra: Any) -> tuple[TokenVerifier, str]:
    if kind == "hs256":  # the site shares the secret; no audience configured
        return HS, voter_token(sub, **extra)
    token = jwt.encode(site_claims(sub=sub, **extra), RSA_KEY, algorithm="RS256")
    return external(RSA_PUBLIC_PEM), token


@pytest.mark.parametrize("kind", ["hs256", "rs256"])
def test_a_site_token_with_wechat_claims_never_votes_with_its_sub_as_the_key(kind: str) -> None:
    chosen = "a-voter-key-the-site-picked"
    verifier, token = site_token(kind, chosen, **WECHAT_CLAIMS)
    assert refusal(verifier, token) == "invalid_token"  # chn is this server's own claim
    verifier, token = site_token(kind, chosen, cid="zibo")  # a login's client id, say
    verified = verifier.verify(f"Bearer {token}")
    assert (verified.channel, verified.campaign) == ("web", None)
    key = token_voter_key(b"k", "zibo", verified)
    assert key == voter_key(b"k", "zibo", web_identity(chosen, None)) != chosen


def test_a_site_token_dressed_as_this_servers_own_is_refused() -> None:
    """A site token with the own `kid` but not the own claims is not a session of ours."""
    forged = jwt.encode(
        claims(typ=WECHAT_SESSION, **WECHAT_CLAIMS), SECRET, algorithm="HS256", headers={"kid": OWN}
    )
    assert refusal(HS, forged) == "invalid_token"
    unknown = sign_own_token(SECRET, "admin", "voter-1", 600)
    assert refusal(HS, unknown) == "invalid_token"


def test_this_servers_wechat_session_votes_with_its_voter_key_in_its_campaign() -> None:
    session = sign_own_token(SECRET, WECHAT_SESSION, "the-wechat-voter-key", 600, **WECHAT_CLAIMS)
    verified = HS.verify(f"Bearer {session}")
    assert verified.channel == "wechat"
    assert token_voter_key(b"k", "zibo", verified) == "the-wechat-voter-key"
    with pytest.raises(UnauthorizedError) as caught:
        token_voter_key(b"k", "another-campaign", verified)
    assert caught.value.code == "token_wrong_campaign"
