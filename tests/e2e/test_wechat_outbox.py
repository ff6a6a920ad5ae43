"""A slow or absent broker: WeChat gets `success` in time and the ballot is still published.

Runs the WeChat vote path against the running system's Postgres with a broker stand-in
that the test holds back or breaks, and checks what the dedup rows hold (never an openid).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from services.domain.ballot import Ballot
from services.domain.campaign import parse_campaign
from services.domain.errors import UnavailableError
from services.ingest.ballots import BallotDesk
from services.ingest.intake import RecentBallots
from services.ingest.metrics import IngestMetrics
from services.ingest.wechat.commands import Vote
from services.ingest.wechat.store import WeChatStore
from services.ingest.wechat.voting import SUCCESS, WeChatVotes
from services.runtime.campaigns import CampaignCache, CampaignStore
from tests.support.system import System


@dataclass
class HeldBroker:
    """Takes ballots only once `open` is set; raises while `down`."""

    open: asyncio.Event = field(default_factory=asyncio.Event)
    down: bool = False
    taken: list[Ballot] = field(default_factory=list)

    async def submit(self, ballot: Ballot) -> None:
        if self.down:
            raise UnavailableError("broker down")
        await self.open.wait()
        self.taken.append(ballot)


@pytest.fixture
async def pool(system: System) -> AsyncIterator[asyncpg.Pool]:
    dsn = f"postgresql://votestream@127.0.0.1:{system.ports['PG']}/votestream"
    async with asyncpg.create_pool(dsn, min_size=1, max_size=4) as opened:
        yield opened


async def _votes(pool: asyncpg.Pool, broker: HeldBroker) -> WeChatVotes:
    cache = CampaignCache(CampaignStore(pool), refresh=60)
    await cache.load()
    desk = BallotDesk(broker, pool, RecentBallots())
    metrics = IngestMetrics.create(CollectorRegistry())
    return WeChatVotes(desk, WeChatStore(pool), cache, metrics, b"pepper", wait=0.2)


async def test_a_slow_broker_gets_success_in_time_and_the_ballot_later(
    system: System, pool: asyncpg.Pool
) -> None:
    campaign = parse_campaign(system.new_campaign())
    broker = HeldBroker()
    votes = await _votes(pool, broker)
    key, openid = f"msg:{secrets.randbelow(10**18)}", "o" + secrets.token_hex(13)
    async with asyncio.timeout(2):
        assert await votes.cast(key, campaign, openid, Vote(("1", "2"))) == SUCCESS
    assert await votes.again(key) == SUCCESS  # a retry while still unconfirmed
    broker.open.set()
    async with asyncio.timeout(10):
        while (record := await votes.store.message(key)) is None or record.reply is None:
            await asyncio.sleep(0.02)
    ids = {str(b.ballot_id) for b in broker.taken}
    assert len(ids) == 1 and ids.pop() in record.reply
    assert await votes.again(key) == record.reply
    row = await pool.fetchrow(
        "SELECT w::text AS r FROM wechat_messages w WHERE message_key=$1", key
    )
    assert openid not in row["r"]


async def test_ballots_left_by_a_broken_broker_are_published_by_the_outbox_sweep(
    system: System, pool: asyncpg.Pool
) -> None:
    campaign = parse_campaign(system.new_campaign())
    broker = HeldBroker(down=True)
    votes = await _votes(pool, broker)
    key = f"msg:{secrets.randbelow(10**18)}"
    assert await votes.cast(key, campaign, "o" + secrets.token_hex(13), Vote(("c04",))) == SUCCESS
    record = await votes.store.message(key)
    assert record is not None and record.reply is None and record.ballot is not None
    broker.down = False
    broker.open.set()
    assert await votes.sweep_outbox(older_than=0) >= 1
    mine = [b for b in broker.taken if b.ballot_id == record.ballot_id]
    assert len(mine) == 1 and mine[0].selections == ("c04",)
    confirmed = await votes.store.message(key)
    assert confirmed is not None and str(record.ballot_id) in (confirmed.reply or "")
