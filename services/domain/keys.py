"""Keys as the API, the kiosks and their agent carry them: base64 of the raw 32 bytes."""

from __future__ import annotations

import base64
import binascii

from services.domain.errors import MalformedError


def raw_key(text: str, *, name: str, algorithm: str, code: str) -> bytes:
    """The 32 raw bytes of a base64 key, or a 400 (`code`) naming the problem."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"{name} must be base64", code=code) from exc
    if len(raw) != 32:
        raise MalformedError(f"{name} must be 32 raw bytes ({algorithm})", code=code)
    return raw
