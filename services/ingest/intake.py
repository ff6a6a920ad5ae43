"""Where every channel hands over a ballot: rules checked, then durably on Kafka (acks=all).

A 202 is answered only after `submit` returns: the broker has the ballot.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Protocol
from uuid import UUID

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.events import encode_ballot
from services.domain.ballot import Ballot
from services.domain.errors import UnavailableError
from services.runtime.kafka import BALLOTS

log = logging.getLogger(__name__)


class BallotSink(Protocol):
    async def submit(self, ballot: Ballot) -> None: ...


class KafkaBallotSink:
    """Publishes ballots keyed by voter key, so one voter's ballots stay in order."""

    def __init__(self, producer: AIOKafkaProducer, timeout: float = 5.0) -> None:
        self.producer = producer
        self.timeout = timeout

    async def submit(self, ballot: Ballot) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.producer.send_and_wait(
                    BALLOTS, encode_ballot(ballot), key=ballot.voter_key.encode()
                )
        except (KafkaError, TimeoutError) as exc:
            log.warning("broker did not take a ballot: %s", type(exc).__name__)
            raise UnavailableError("the ballot box is busy, try again", retry_after=2) from exc


class RecentBallots:
    """Ballot ids this process accepted lately: answers `pending` before the tally has run,
    and lets a retried ballot_id get its first answer back without a second publish."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self._items: OrderedDict[UUID, dict[str, str]] = OrderedDict()

    def get(self, ballot_id: UUID) -> dict[str, str] | None:
        return self._items.get(ballot_id)

    def add(self, ballot_id: UUID, answer: dict[str, str]) -> None:
        self._items[ballot_id] = answer
        if len(self._items) > self.size:
            self._items.popitem(last=False)
