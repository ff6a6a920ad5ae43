"""One batch entry -> a domain Ballot. The voter_ref is opened with the server's sealing key
(services/domain/voter_refs.py), its identity checked and turned into the voter_key here, at
once; the ref and the identity are kept nowhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.domain.errors import MalformedError
from services.domain.voter_refs import open_ref
from services.domain.voters import check_kiosk_identity, voter_key
from services.ingest.kiosk.signature import TIMESTAMP_WINDOW


def campaign_id_of(entry: dict[str, Any]) -> str:
    value = entry.get("campaign_id")
    if not isinstance(value, str) or not value:
        raise MalformedError("campaign_id must be a campaign's id", code="bad_campaign_id")
    return value


def kiosk_ballot(
    entry: dict[str, Any],
    campaign: Campaign,
    *,
    identity_key: bytes,
    sealing_key: X25519PrivateKey,
    device_id: str,
    batch_id: UUID,
    received_at: datetime,
) -> Ballot:
    ref = entry.get("voter_ref")
    identity = check_kiosk_identity(
        open_ref(sealing_key, campaign.id, ref if isinstance(ref, str) else "")
    )
    return Ballot(
        ballot_id=entry["ballot_id"],
        campaign_id=campaign.id,
        channel="kiosk",
        voter_key=voter_key(identity_key, campaign.id, identity),
        selections=_selections(entry.get("selections")),
        cast_at=_cast_at(entry.get("cast_at"), received_at),
        received_at=received_at,
        meta={"device_id": device_id, "batch_id": str(batch_id)},
    )


def _selections(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise MalformedError("selections must be a list of candidate ids", code="bad_selections")
    return tuple(raw)


def _cast_at(raw: Any, received_at: datetime) -> datetime:
    """The kiosk's clock is trusted within the signature's window, not beyond."""
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedError("cast_at must be an RFC 3339 time", code="bad_cast_at") from exc
    if moment.tzinfo is None:
        raise MalformedError("cast_at needs a UTC offset", code="bad_cast_at")
    if moment > received_at + TIMESTAMP_WINDOW:
        raise MalformedError("cast_at is in the future", code="cast_in_future")
    return moment
