"""A kiosk's `voter_ref`: the voter's canonical identity sealed to the server's public key.

Why a sealed box and not a hash: a kiosk's voters are phones (10^10 mainland numbers) or
resident ID numbers (far fewer valid ones); any hash a kiosk can compute, salted or not, a
thief of the kiosk can compute too, and tries every number in minutes. Instead the kiosk
encrypts the identity to a public key whose private half only the server holds:

    ref = base64url( 0x01 || E || AES-256-GCM(k, n, pad(identity), aad=campaign_id) )
    E   = a fresh X25519 key pair's public half (one per ballot)
    k,n = HKDF-SHA256(X25519(e, S), salt = E || S, info = INFO), 32 + 12 bytes

(the shape of HPKE's base mode with DHKEM(X25519), HKDF-SHA256 and AES-256-GCM). The kiosk
keeps no way back: `e` is dropped once the ref is made, so neither its queue nor its device
key nor its code opens a ref. Only the server opens it, derives the same voter_key the web
channel gives that identity (services/domain/voters.py) and drops the plaintext. Each ref is
different even for the same voter, so refs do not link a voter's visits either. The campaign
id is authenticated data: a ref opens only for the campaign it was sealed for. Identities are
padded to one length, so a ref does not tell a phone from an ID number.

The server's X25519 key is derived from VOTESTREAM_IDENTITY_KEY (HKDF, its own label), so
there is no second secret to keep in step: whoever holds the identity key can already tell
voters apart, and rotating it re-keys voters and kiosks together.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.domain.errors import MalformedError
from services.domain.keys import raw_key

ALGORITHM = "X25519-HKDF-SHA256-AES256GCM"
VERSION = b"\x01"
INFO = b"votestream kiosk voter_ref v1"
_KEY_LABEL = b"votestream kiosk voter_ref X25519 key v1"
PADDED = 48  # "kiosk-id:" + 18 characters, or "+" + 15 digits, fit with room to spare
_SEALED_BYTES = 1 + 32 + PADDED + 16


class BadVoterRefError(MalformedError):
    code = "bad_voter_ref"


def server_sealing_key(identity_key: bytes) -> X25519PrivateKey:
    """The server's private key, derived from the identity key under its own label."""
    seed = HKDF(hashes.SHA256(), 32, salt=None, info=_KEY_LABEL).derive(identity_key)
    return X25519PrivateKey.from_private_bytes(seed)


def public_key_text(key: X25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def parse_public_key(text: str) -> X25519PublicKey:
    raw = raw_key(text, name="the sealing key", algorithm="X25519", code="bad_sealing_key")
    return X25519PublicKey.from_public_bytes(raw)


def _key_and_nonce(shared: bytes, ephemeral: bytes, server: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(hashes.SHA256(), 44, salt=ephemeral + server, info=INFO).derive(shared)
    return okm[:32], okm[32:]


def seal(server_key: X25519PublicKey, campaign_id: str, identity: str) -> str:
    """A voter_ref for this campaign: only the holder of the server's private key opens it."""
    plain = identity.encode()
    if len(plain) > PADDED or b"\x00" in plain:
        raise MalformedError("identity too long to seal", code="bad_voter_ref")
    ephemeral = X25519PrivateKey.generate()
    e_raw = ephemeral.public_key().public_bytes_raw()
    key, nonce = _key_and_nonce(
        ephemeral.exchange(server_key), e_raw, server_key.public_bytes_raw()
    )
    sealed = AESGCM(key).encrypt(nonce, plain.ljust(PADDED, b"\x00"), campaign_id.encode())
    return base64.urlsafe_b64encode(VERSION + e_raw + sealed).decode().rstrip("=")


def open_ref(server_key: X25519PrivateKey, campaign_id: str, ref: str) -> str:
    """The identity sealed in `ref` for this campaign, or BadVoterRefError."""
    try:
        raw = base64.urlsafe_b64decode(ref + "=" * (-len(ref) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadVoterRefError("voter_ref is not base64url") from exc
    if len(raw) != _SEALED_BYTES or raw[:1] != VERSION:
        raise BadVoterRefError("voter_ref is not a sealed identity (version 1)")
    e_raw, sealed = raw[1:33], raw[33:]
    try:
        ephemeral = X25519PublicKey.from_public_bytes(e_raw)
        shared = server_key.exchange(ephemeral)
        key, nonce = _key_and_nonce(shared, e_raw, server_key.public_key().public_bytes_raw())
        padded = AESGCM(key).decrypt(nonce, sealed, campaign_id.encode())
    except (InvalidTag, ValueError) as exc:
        raise BadVoterRefError(
            "voter_ref does not open: sealed to another server key or for another campaign"
        ) from exc
    try:
        return padded.rstrip(b"\x00").decode()
    except UnicodeDecodeError as exc:
        raise BadVoterRefError("voter_ref holds no identity") from exc
