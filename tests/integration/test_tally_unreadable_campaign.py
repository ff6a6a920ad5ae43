"""A batch of a campaign whose stored definition no longer parses waits, holding its ballots,
until the definition is mended: it is neither counted under unknown rules nor lost."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from schemas.events import encode_ballot
from services.domain.ballot import Ballot
from services.runtime.campaigns import CampaignStore
from services.runtime.kafka import BALLOTS
from services.runtime.settings import Settings
from services.tally.app import Tally
from services.tally.deps import TallyDeps
from services.tally.metrics import TallyMetrics
from tests.support.campaigns import make_campaign

NOW = datetime.now(UTC)


async def test_the_batch_waits_for_the_definition_to_be_mended_then_counts(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=database, campaign_refresh=3600)
    deps = TallyDeps(settings)
    await deps.open()
    assert deps.pool is not None
    try:
        tally = Tally(settings, TallyMetrics.create(CollectorRegistry()), deps)
        await CampaignStore(deps.pool).put(make_campaign("mended", now=NOW))
        good = await deps.pool.fetchval("SELECT definition::text FROM campaigns")
        await deps.pool.execute("""UPDATE campaigns SET definition = '{"id": "mended"}'""")
        voter = hashlib.sha256(b"v").hexdigest()
        ballot = Ballot(uuid.uuid4(), "mended", "web", voter, ("c1",), NOW, NOW)
        value = encode_ballot(ballot)
        poll = [ConsumerRecord(BALLOTS, 0, 0, 0, 0, None, value, None, 0, len(value), ())]

        with caplog.at_level(logging.WARNING, logger="services.tally.app"):
            storing = asyncio.create_task(tally._apply_until_stored(poll))
            while "the definition of a campaign in it does not parse" not in caplog.text:
                assert not storing.done(), storing  # a crash would end the task
                await asyncio.sleep(0.05)
        assert tally.pending_since == NOW  # held: the oldest-uncounted gauge shows it

        await deps.pool.execute("UPDATE campaigns SET definition = $1::jsonb", good)
        await asyncio.wait_for(storing, timeout=10)
        status = await deps.pool.fetchval(
            "SELECT status FROM ballots WHERE ballot_id = $1", ballot.ballot_id
        )
        assert status == "counted" and tally.pending_since is None
    finally:
        await deps.close()
