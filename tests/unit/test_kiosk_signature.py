"""Kiosk signatures: Ed25519 key handling (RFC 8032 §7.1 TEST 1) and the request checks."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.domain.errors import MalformedError, UnauthorizedError
from services.ingest.kiosk.signature import check_signature, check_timestamp, parse_public_key
from services.kiosk_agent.keys import keygen, load_private_key, public_key_text, sign_batch

RFC8032_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


def test_rfc8032_test_1_through_the_kiosk_key_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "device.key"
    secret_file.write_text(b64(RFC8032_SECRET) + "\n")
    key = load_private_key(secret_file)
    assert public_key_text(key) == b64(RFC8032_PUBLIC)
    assert key.sign(b"").hex() == RFC8032_SIGNATURE
    server_side = parse_public_key(b64(RFC8032_PUBLIC))
    server_side.verify(bytes.fromhex(RFC8032_SIGNATURE), b"")  # raises if it does not verify


def test_keygen_writes_a_secret_only_the_owner_reads_and_a_registrable_public_key(
    tmp_path: Path,
) -> None:
    public = keygen(tmp_path / "k")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    key = load_private_key(tmp_path / "k")
    assert parse_public_key(public.read_text()) is not None
    assert public.read_text().strip() == public_key_text(key)
    with pytest.raises(FileExistsError):
        keygen(tmp_path / "k")


def test_a_signature_over_timestamp_and_body_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    public = parse_public_key(public_key_text(key))
    stamp, body = NOW.isoformat(), b'{"seq": 1}'
    check_signature(public, sign_batch(key, stamp, body), stamp, body)


@pytest.mark.parametrize(
    "change",
    ["body", "timestamp", "key", "garbage"],
)
def test_any_change_breaks_the_signature(change: str) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    stamp, body = NOW.isoformat(), b'{"seq": 1}'
    signature = sign_batch(other if change == "key" else key, stamp, body)
    if change == "garbage":
        signature = "not base64!"
    checked_body = body + b" " if change == "body" else body
    checked_stamp = (NOW + timedelta(seconds=1)).isoformat() if change == "timestamp" else stamp
    with pytest.raises(UnauthorizedError) as refused:
        check_signature(
            parse_public_key(public_key_text(key)), signature, checked_stamp, checked_body
        )
    assert refused.value.code == "bad_signature" and refused.value.status == 401


def test_a_missing_signature_is_refused() -> None:
    key = parse_public_key(public_key_text(Ed25519PrivateKey.generate()))
    with pytest.raises(UnauthorizedError, match="required"):
        check_signature(key, None, NOW.isoformat(), b"{}")


@pytest.mark.parametrize(
    "offset", [timedelta(0), timedelta(minutes=4, seconds=59), -timedelta(minutes=5)]
)
def test_timestamps_within_five_minutes_pass(offset: timedelta) -> None:
    check_timestamp((NOW + offset).isoformat(), NOW)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ((NOW + timedelta(minutes=5, seconds=1)).isoformat(), "stale_timestamp"),
        ((NOW - timedelta(hours=2)).isoformat().replace("+00:00", "Z"), "stale_timestamp"),
        ("2026-05-01T12:00:00", "bad_timestamp"),
        ("yesterday", "bad_timestamp"),
        (None, "missing_timestamp"),
    ],
)
def test_timestamps_off_or_unreadable_are_refused(header: str | None, code: str) -> None:
    with pytest.raises(UnauthorizedError) as refused:
        check_timestamp(header, NOW)
    assert refused.value.code == code


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_public_key_must_be_base64_of_32_raw_bytes(text: str) -> None:
    with pytest.raises(MalformedError) as refused:
        parse_public_key(text)
    assert refused.value.code == "bad_public_key"
