"""The voter's phone or ID number becomes a hex SHA-256 (voter_ref) here, before anything
is stored: the raw number never reaches the queue, a log or the network."""

from __future__ import annotations

import hashlib
import re

from services.domain.voters import normalize_phone

_PHONE = re.compile(r"^(\+\d+|1\d{10})$")
_ID_NUMBER = re.compile(r"^[0-9A-Z]{6,32}$")


def voter_ref(raw: str) -> str:
    """One person gives one ref on every kiosk: spaces, dashes and letter case do not matter."""
    text = re.sub(r"[\s()-]", "", raw).upper()
    if _PHONE.match(text):
        canonical = normalize_phone(text)
    elif _ID_NUMBER.match(text):
        canonical = text
    else:
        raise ValueError("give a phone number or an ID number")
    return hashlib.sha256(canonical.encode()).hexdigest()
