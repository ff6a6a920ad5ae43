"""Which campaign a follower votes in: their last QR scene or menu click, else the default."""

from __future__ import annotations

from datetime import UTC, datetime

from services.domain.campaign import Campaign
from services.ingest.wechat.keys import sender_key
from services.ingest.wechat.store import WeChatStore
from services.runtime.campaigns import CampaignCache

SCENE_PREFIX = "qrscene_"  # a `subscribe` through a QR code carries "qrscene_<scene>"


def scene_of(event_key: str) -> str:
    return event_key.removeprefix(SCENE_PREFIX)


class Sessions:
    def __init__(
        self,
        store: WeChatStore,
        campaigns: CampaignCache,
        identity_key: bytes,
        default_campaign: str | None,
    ) -> None:
        self.store, self.campaigns = store, campaigns
        self.identity_key, self.default_campaign = identity_key, default_campaign

    async def campaign_of(self, openid: str) -> Campaign | None:
        chosen = await self.store.session_campaign(sender_key(self.identity_key, openid))
        if chosen and (campaign := self.campaigns.get(chosen)):
            return campaign
        if self.default_campaign:
            return self.campaigns.get(self.default_campaign)
        return self.only_open_campaign()

    def only_open_campaign(self) -> Campaign | None:
        now = datetime.now(UTC)
        found = [
            c for c in self.campaigns.all() if c.status(now) == "open" and "wechat" in c.channels
        ]
        return found[0] if len(found) == 1 else None

    async def switch(self, openid: str, event_key: str) -> Campaign | None:
        """Moves the follower to the campaign the key names; None if it names none."""
        campaign = self.campaigns.get(scene_of(event_key))
        if campaign is not None:
            await self.store.switch_campaign(sender_key(self.identity_key, openid), campaign.id)
        return campaign
