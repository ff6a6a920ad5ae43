"""voter_refs as a kiosk makes them: test voters' labels become phones, sealed to a server."""

from __future__ import annotations

import hashlib

import httpx

from services.domain.voter_refs import seal, server_sealing_key
from services.kiosk_agent.identity import Sealer
from tests.support.system import System


def phone_of(label: str) -> str:
    """A valid mainland mobile number, one per label (never a real person's on purpose)."""
    digits = int(hashlib.sha256(label.encode()).hexdigest(), 16) % 10**8
    return f"+86139{digits:08d}"


def sealed_ref(identity_key: bytes, campaign_id: str, label: str) -> str:
    """The ref a kiosk sends for the voter `label` to the server holding `identity_key`."""
    return seal(server_sealing_key(identity_key).public_key(), campaign_id, phone_of(label))


def system_sealer(system: System) -> Sealer:
    """Seals as a kiosk of this running system does, with the key its ingest shows."""
    shown = httpx.get(f"{system.ingest}/v1/kiosk/sealing-key", timeout=10).json()
    return Sealer.from_text(shown["public_key"])
