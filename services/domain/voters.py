"""Pseudonymous voter keys: HMAC-SHA256(identity key, campaign_id ":" canonical identity).

Raw phone numbers, openids and ID numbers go in here and never come out.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from services.domain.errors import MalformedError

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def voter_key(identity_key: bytes, campaign_id: str, identity: str) -> str:
    message = f"{campaign_id}:{identity}".encode()
    return hmac.new(identity_key, message, hashlib.sha256).hexdigest()


def normalize_phone(phone: str) -> str:
    """E.164 form; mainland numbers without a country code get +86."""
    digits = re.sub(r"[\s()-]", "", phone)
    if re.fullmatch(r"1\d{10}", digits):
        digits = "+86" + digits
    if not _E164.match(digits):
        raise MalformedError("phone must be an E.164 number like +8613800138000", code="bad_phone")
    return digits


def web_identity(sub: str, verified_phone: str | None) -> str:
    return normalize_phone(verified_phone) if verified_phone else f"web:{sub}"


def wechat_identity(openid: str) -> str:
    return f"wechat:{openid}"


def kiosk_identity(voter_ref: str) -> str:
    """The kiosk sends a SHA-256 of the voter's phone or ID number, never the number."""
    ref = voter_ref.lower()
    if not _HEX64.match(ref):
        raise MalformedError("voter_ref must be a hex SHA-256", code="bad_voter_ref")
    return f"kiosk-id:{ref}"
