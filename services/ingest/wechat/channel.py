"""One WeChat message in, one reply out: commands, events, and the same reply for retries."""

from __future__ import annotations

from services.ingest.metrics import IngestMetrics
from services.ingest.wechat import replies
from services.ingest.wechat.commands import (
    Command,
    Help,
    ListCandidates,
    Results,
    Vote,
    parse_command,
)
from services.ingest.wechat.keys import message_key
from services.ingest.wechat.messages import Incoming
from services.ingest.wechat.sessions import Sessions
from services.ingest.wechat.store import WeChatStore
from services.ingest.wechat.voting import SUCCESS, WeChatVotes

SWITCHING_EVENTS = ("subscribe", "scan", "click")


class WeChatChannel:
    def __init__(
        self,
        store: WeChatStore,
        sessions: Sessions,
        votes: WeChatVotes,
        metrics: IngestMetrics,
        identity_key: bytes,
    ) -> None:
        self.store, self.sessions, self.votes = store, sessions, votes
        self.metrics, self.identity_key = metrics, identity_key

    async def answer(self, message: Incoming) -> str:
        """The reply text; "" means WeChat's `success` (nothing shown to the follower)."""
        key = message_key(self.identity_key, message)
        if await self.store.message(key) is not None:
            self.metrics.wechat_messages.labels("retry").inc()
            return await self.votes.again(key)
        if message.msg_type == "text":
            command = parse_command(message.content)
            if isinstance(command, Vote):
                return await self._vote(key, message, command)
            reply = await self._command(message, command)
        elif message.msg_type == "event":
            reply = await self._event(message)
        else:
            self.metrics.wechat_messages.labels("other").inc()
            reply = replies.HELP
        return reply if await self.store.claim(key, reply=reply) else await self.votes.again(key)

    async def _vote(self, key: str, message: Incoming, vote: Vote) -> str:
        self.metrics.wechat_messages.labels("vote").inc()
        campaign = await self.sessions.campaign_of(message.sender)
        if campaign is None:
            claimed = await self.store.claim(key, reply=replies.NO_CAMPAIGN)
            return replies.NO_CAMPAIGN if claimed else await self.votes.again(key)
        return await self.votes.cast(key, campaign, message.sender, vote)

    async def _command(self, message: Incoming, command: Command) -> str:
        kind = {ListCandidates: "list", Results: "results"}.get(type(command), "help")
        self.metrics.wechat_messages.labels(kind).inc()
        campaign = await self.sessions.campaign_of(message.sender)
        if campaign is None:
            return replies.NO_CAMPAIGN
        if isinstance(command, ListCandidates):
            return replies.candidate_list(campaign)
        if isinstance(command, Results):
            return replies.standings(campaign, await self.store.latest_snapshot(campaign.id))
        return f"【{campaign.title}】\n{replies.HELP}"

    async def _event(self, message: Incoming) -> str:
        if message.event not in SWITCHING_EVENTS:
            self.metrics.wechat_messages.labels("event").inc()
            return SUCCESS  # unsubscribe, location, view...: nothing to say
        campaign = await self.sessions.switch(message.sender, message.event_key)
        if campaign is not None:
            self.metrics.wechat_messages.labels("switch").inc()
            return replies.switched(campaign)
        if message.event == "click":
            command = parse_command(message.event_key)  # menu keys may be "list" or "results"
            return await self._command(message, Help() if isinstance(command, Vote) else command)
        self.metrics.wechat_messages.labels("event").inc()
        return replies.HELP if message.event == "subscribe" else SUCCESS
