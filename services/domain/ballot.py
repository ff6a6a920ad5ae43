"""A ballot as it travels from a channel to the tally, and the fate the tally gives it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

Channel = Literal["web", "wechat", "kiosk"]
Status = Literal["counted", "rejected", "held"]  # held: a defence rule awaits the organiser


@dataclass(frozen=True)
class Ballot:
    """A cast ballot; `voter_key` is pseudonymous, `meta` holds audit data (device, IP prefix)."""

    ballot_id: UUID
    campaign_id: str
    channel: Channel
    voter_key: str
    selections: tuple[str, ...]
    cast_at: datetime
    received_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cutoff:
    """A marker the publisher writes into every partition once a campaign's intake ends."""

    campaign_id: str
    written_at: datetime


@dataclass(frozen=True)
class Fate:
    """What the tally decided for one ballot; `period` is the voter-limit bucket it used."""

    ballot: Ballot
    status: Status
    reason: str | None
    period: str
