"""Casting a WeChat vote once, answering inside WeChat's 5 s, and never losing the ballot.

The ballot is written to Postgres (the message's dedup row) before it is published, with a
ballot_id derived from the message key. If the broker answers within `wait` seconds the
voter gets the receipt; otherwise WeChat gets `success` (no reply, no retry) while the
publish goes on in the background, and the outbox sweep of any ingest process publishes
rows still unconfirmed after `OUTBOX_AGE` seconds. Publishing twice is harmless: the tally
keys ballots by ballot_id, so the same ballot is counted at most once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from schemas.events import decode_event, encode_ballot
from services.domain.ballot import Ballot
from services.domain.campaign import Campaign
from services.domain.errors import ConflictError, RuleError, UnavailableError, VotestreamError
from services.domain.rules import check_ballot
from services.domain.voters import voter_key, wechat_identity
from services.ingest.ballots import BallotDesk
from services.ingest.metrics import IngestMetrics
from services.ingest.wechat import replies
from services.ingest.wechat.commands import Vote, selections_for
from services.ingest.wechat.keys import ballot_id_for
from services.ingest.wechat.store import WeChatStore
from services.runtime.campaigns import CampaignCache

log = logging.getLogger(__name__)
VOTE_WAIT_SECONDS = 3.0  # well inside WeChat's 5 s, with room for the network
OUTBOX_AGE = 10.0  # older than the broker timeout: its first publish has given up by then
SUCCESS = ""  # WeChat's "no reply": answered as `success`


class WeChatVotes:
    def __init__(
        self,
        desk: BallotDesk,
        store: WeChatStore,
        campaigns: CampaignCache,
        metrics: IngestMetrics,
        identity_key: bytes,
        wait: float = VOTE_WAIT_SECONDS,
    ) -> None:
        self.desk, self.store, self.campaigns = desk, store, campaigns
        self.metrics, self.identity_key, self.wait = metrics, identity_key, wait
        self._background: set[asyncio.Task[str]] = set()

    def ballot(self, key: str, campaign: Campaign, openid: str, vote: Vote) -> Ballot:
        now = datetime.now(UTC)
        ballot = Ballot(
            ballot_id=ballot_id_for(key),
            campaign_id=campaign.id,
            channel="wechat",
            voter_key=voter_key(self.identity_key, campaign.id, wechat_identity(openid)),
            selections=selections_for(campaign, vote),
            cast_at=now,
            received_at=now,
        )
        check_ballot(campaign, ballot)
        return ballot

    async def cast(self, key: str, campaign: Campaign, openid: str, vote: Vote) -> str:
        """The reply to a first vote message (a refusal is a reply too, and no ballot)."""
        try:
            ballot = self.ballot(key, campaign, openid, vote)
        except (RuleError, ConflictError) as exc:
            self._count_refusal(exc)
            reply = replies.vote_refused(campaign, exc)
            return reply if await self.store.claim(key, reply=reply) else await self.again(key)
        if not await self.store.claim(
            key, ballot_id=ballot.ballot_id, ballot=encode_ballot(ballot)
        ):
            return await self.again(key)
        return await self.publish(key, ballot)

    async def again(self, key: str) -> str:
        """A retry: the stored reply, or one more publish of the stored ballot."""
        record = await self.store.message(key)
        if record is None or record.ballot is None:
            return SUCCESS if record is None or record.reply is None else record.reply
        if record.reply is not None:
            return record.reply
        ballot = decode_event(record.ballot)
        return await self.publish(key, ballot) if isinstance(ballot, Ballot) else SUCCESS

    async def publish(self, key: str, ballot: Ballot) -> str:
        task = asyncio.create_task(self._publish_and_confirm(key, ballot))
        self._background.add(task)
        task.add_done_callback(self._finished)
        try:
            async with asyncio.timeout(self.wait):
                return await asyncio.shield(task)
        except (TimeoutError, UnavailableError):
            self.metrics.requests.labels("wechat", "unavailable").inc()  # deferred, not lost
            return SUCCESS  # the ballot is in the outbox: published later, counted once

    async def _publish_and_confirm(self, key: str, ballot: Ballot) -> str:
        campaign = self.campaigns.get(ballot.campaign_id)
        if campaign is None:
            return await self.store.confirm(key, replies.NO_CAMPAIGN)
        try:
            answer = await self.desk.cast(campaign, ballot, client_id=True)
        except (RuleError, ConflictError) as exc:
            self._count_refusal(exc)
            return await self.store.confirm(key, replies.vote_refused(campaign, exc))
        self.metrics.requests.labels("wechat", "accepted").inc()
        return await self.store.confirm(key, replies.vote_accepted(answer["ballot_id"]))

    def _finished(self, task: asyncio.Task[str]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # the row stays unconfirmed: the outbox sweep publishes it later
            log.warning("wechat ballot publish deferred: %s", type(exc).__name__)

    def _count_refusal(self, exc: VotestreamError) -> None:
        self.metrics.requests.labels("wechat", "rejected").inc()
        self.metrics.rejections.labels("wechat", exc.code).inc()

    async def sweep_outbox(self, older_than: float = OUTBOX_AGE) -> int:
        """Publishes ballots whose first publish did not confirm; returns how many it did."""
        done = 0
        for key, raw in await self.store.unconfirmed(older_than):
            ballot = decode_event(raw)
            if isinstance(ballot, Ballot):
                await self._publish_and_confirm(key, ballot)
                done += 1
        return done
