"""Writing a campaign's cut-off marker into every partition of `ballots`."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from schemas.events import encode_cutoff
from services.domain.ballot import Cutoff
from services.domain.campaign import Campaign
from services.runtime.kafka import BALLOTS


class KafkaCutoffWriter:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def __call__(self, campaign: Campaign) -> int:
        partitions = sorted(await self.producer.partitions_for(BALLOTS))
        marker = encode_cutoff(Cutoff(campaign.id, datetime.now(UTC)))
        key = campaign.id.encode()
        for partition in partitions:
            await self.producer.send_and_wait(BALLOTS, marker, key=key, partition=partition)
        return len(partitions)
