"""Kiosk request signatures: Ed25519 over `timestamp + "\n" + body`, within ±5 minutes.

The server holds only public keys; a device's secret never leaves the kiosk.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.domain.errors import UnauthorizedError
from services.domain.keys import raw_key

TIMESTAMP_WINDOW = timedelta(minutes=5)


def signed_message(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode() + b"\n" + body


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The base64 of a raw 32-byte Ed25519 public key, or a 400 naming the problem."""
    raw = raw_key(text, name="public_key", algorithm="Ed25519", code="bad_public_key")
    return Ed25519PublicKey.from_public_bytes(raw)


def check_timestamp(header: str | None, now: datetime) -> None:
    """An RFC 3339 time no more than TIMESTAMP_WINDOW away from the server's clock."""
    if not header:
        raise UnauthorizedError("X-Kiosk-Timestamp is required", code="missing_timestamp")
    try:
        moment = datetime.fromisoformat(header.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnauthorizedError("X-Kiosk-Timestamp is not RFC 3339", code="bad_timestamp") from exc
    if moment.tzinfo is None:
        raise UnauthorizedError("X-Kiosk-Timestamp needs a UTC offset", code="bad_timestamp")
    if abs(moment.astimezone(UTC) - now) > TIMESTAMP_WINDOW:
        raise UnauthorizedError("X-Kiosk-Timestamp is too far off", code="stale_timestamp")


def check_signature(key: Ed25519PublicKey, header: str | None, timestamp: str, body: bytes) -> None:
    if not header:
        raise UnauthorizedError("X-Kiosk-Signature is required", code="missing_signature")
    try:
        key.verify(base64.b64decode(header, validate=True), signed_message(timestamp, body))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise UnauthorizedError(
            "the batch signature does not verify", code="bad_signature"
        ) from exc
