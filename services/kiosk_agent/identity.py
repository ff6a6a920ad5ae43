"""The voter's phone or ID number becomes a sealed voter_ref here, before anything is stored.

The typed number is normalised (phone -> E.164, ID number checked by its GB 11643 character,
look-alike digits folded: services/domain/voters.py) and sealed to the server's public key
for the campaign (services/domain/voter_refs.py). The kiosk cannot open what it sealed: the
raw number never reaches the queue, a log or the network, and a stolen kiosk's queue holds
nothing a brute force over phone numbers could match.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from services.domain.voter_refs import parse_public_key, seal
from services.domain.voters import kiosk_identity


@dataclass(frozen=True)
class Sealer:
    server_key: X25519PublicKey

    @classmethod
    def from_text(cls, public_key: str) -> Sealer:
        return cls(parse_public_key(public_key))

    def voter_ref(self, campaign_id: str, typed: str) -> str:
        """A fresh ref for what the voter typed; MalformedError (with its code) if neither a
        valid phone nor a valid ID number."""
        return seal(self.server_key, campaign_id, kiosk_identity(typed))
