"""Pseudonymous voter keys: HMAC-SHA256(identity key, campaign_id ":" canonical identity).

Canonical identities: a verified phone is its ASCII E.164 (services/domain/phones.py) on
every channel, web OTP and kiosk alike, so one phone is one voter; otherwise the channel's
own id: `web:<sub>`, `wechat:<openid>`, `kiosk-id:<resident ID number>` (checked by its
GB 11643 check character, services/domain/id_numbers.py). A kiosk never sends an identity in
the clear: it seals it to the server (services/domain/voter_refs.py), and the server checks
the opened identity here before deriving the key.

Raw phone numbers, openids and ID numbers go in here and never come out.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from services.domain.id_numbers import SHAPE as ID_SHAPE
from services.domain.id_numbers import normalize_id_number
from services.domain.phones import fold_lookalikes
from services.domain.phones import normalize_phone as normalize_phone
from services.domain.voter_refs import BadVoterRefError

ID_PREFIX = "kiosk-id:"


def voter_key(identity_key: bytes, campaign_id: str, identity: str) -> str:
    message = f"{campaign_id}:{identity}".encode()
    return hmac.new(identity_key, message, hashlib.sha256).hexdigest()


def web_identity(sub: str, verified_phone: str | None) -> str:
    return normalize_phone(verified_phone) if verified_phone else f"web:{sub}"


def wechat_identity(openid: str) -> str:
    return f"wechat:{openid}"


def kiosk_identity(raw: str) -> str:
    """What a voter types at a kiosk -> canonical identity: an 18-character resident ID
    number becomes `kiosk-id:<number>`, anything else must be a phone (-> E.164)."""
    compact = re.sub(r"[\s()-]", "", fold_lookalikes(raw)).upper()
    if ID_SHAPE.match(compact):
        return ID_PREFIX + normalize_id_number(compact)
    return normalize_phone(raw)


def check_kiosk_identity(identity: str) -> str:
    """An identity opened from a kiosk's voter_ref, accepted only in its canonical form."""
    if identity.startswith(ID_PREFIX):
        canonical = ID_PREFIX + normalize_id_number(identity.removeprefix(ID_PREFIX))
    else:
        canonical = normalize_phone(identity)
    if canonical != identity:
        raise BadVoterRefError("the sealed identity is not in canonical form")
    return canonical
