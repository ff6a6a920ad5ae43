"""Campaign definitions in Postgres, and the cache through which every service reads them.

Every service refreshes its cache every `campaign_refresh` seconds, so a new or changed
campaign reaches all of them within seconds, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import yaml

from services.domain.campaign import Campaign, parse_campaign, parse_duration
from services.domain.errors import CampaignInvalidError, NotFoundError

log = logging.getLogger(__name__)


def read_campaign_file(
    path: Path, *, open_now: bool = False, duration: str = "14d", now: datetime | None = None
) -> Campaign:
    """A campaign from YAML or JSON; `open_now` opens it now for `duration`."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CampaignInvalidError([f"{path.name}: not valid YAML/JSON: {exc}"]) from exc
    if open_now and isinstance(data, dict):
        start = (now or datetime.now(UTC)).replace(microsecond=0)
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            raise CampaignInvalidError([f"--duration: {exc}"]) from exc
        data = {**data, "opens_at": start.isoformat(), "closes_at": (start + length).isoformat()}
    return parse_campaign(_stringify_times(data))


def _stringify_times(data: Any) -> Any:
    # YAML turns unquoted timestamps into datetimes; the parser takes both, but naive ones
    # must be refused, so keep what YAML produced as it is.
    return data


class CampaignStore:
    """Campaign rows in Postgres."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def put(self, campaign: Campaign) -> None:
        await self.pool.execute(
            "INSERT INTO campaigns (id, definition) VALUES ($1, $2::jsonb)"
            " ON CONFLICT (id) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()",
            campaign.id,
            orjson.dumps(campaign.to_dict()).decode(),
        )

    async def all(self) -> list[Campaign]:
        rows = await self.pool.fetch("SELECT definition FROM campaigns ORDER BY id")
        return [parse_campaign(orjson.loads(r["definition"])) for r in rows]

    async def changed_since(
        self, versions: Mapping[str, datetime]
    ) -> tuple[dict[str, datetime], list[Campaign]]:
        """Every campaign's version (`updated_at`), and the campaigns whose version is not the
        one in `versions`: a reader that already holds the rest reads and parses only those."""
        rows = await self.pool.fetch(
            "SELECT c.id, c.updated_at,"
            " CASE WHEN k.at IS DISTINCT FROM c.updated_at THEN c.definition END AS definition"
            " FROM campaigns c"
            " LEFT JOIN unnest($1::text[], $2::timestamptz[]) AS k(id, at) ON k.id = c.id",
            list(versions),
            list(versions.values()),
        )
        changed = [parse_campaign(orjson.loads(r["definition"])) for r in rows if r["definition"]]
        return {r["id"]: r["updated_at"] for r in rows}, changed

    async def get(self, campaign_id: str) -> Campaign:
        row = await self.pool.fetchrow(
            "SELECT definition FROM campaigns WHERE id = $1", campaign_id
        )
        if row is None:
            raise NotFoundError(f"no campaign {campaign_id!r}", code="unknown_campaign")
        return parse_campaign(orjson.loads(row["definition"]))

    async def close(self, campaign_id: str, at: datetime) -> Campaign:
        """Closes now (never re-opens, never moves an earlier close later)."""
        campaign = await self.get(campaign_id)
        if at < campaign.closes_at:
            data = campaign.to_dict()
            data["closes_at"] = max(at, campaign.opens_at + timedelta(microseconds=1)).isoformat()
            campaign = parse_campaign(data)
            await self.put(campaign)
        return campaign


class CampaignCache:
    """An in-memory copy of all campaigns, refreshed in the background."""

    def __init__(self, store: CampaignStore, refresh: float) -> None:
        self.store = store
        self.refresh = refresh
        self._campaigns: dict[str, Campaign] = {}
        self._versions: dict[str, datetime] = {}  # updated_at of each campaign read
        self._task: asyncio.Task[None] | None = None
        self.loaded_at = datetime.min.replace(tzinfo=UTC)

    def get(self, campaign_id: str) -> Campaign | None:
        return self._campaigns.get(campaign_id)

    def all(self) -> list[Campaign]:
        return list(self._campaigns.values())

    def require(self, campaign_id: str) -> Campaign:
        campaign = self.get(campaign_id)
        if campaign is None:
            raise NotFoundError(f"no campaign {campaign_id!r}", code="unknown_campaign")
        return campaign

    async def load(self) -> None:
        """Reads what changed since the last load (the tally asks before most batches, so
        parsing every campaign each time would grow with the number of campaigns)."""
        started = datetime.now(UTC)  # before the read: what we read is at least this fresh
        versions, changed = await self.store.changed_since(self._versions)
        campaigns = {cid: c for cid, c in self._campaigns.items() if cid in versions}
        campaigns.update((c.id, c) for c in changed)
        self._campaigns, self._versions = campaigns, versions
        self.loaded_at = started

    async def fresh_as_of(self, moment: datetime) -> None:
        """Reloads unless the copy was read after `moment`.

        The tally calls this with the newest `received_at` of a batch, so a ballot is always
        judged by a definition at least as new as the ballot: a campaign created, or closed,
        just before a ballot arrived is seen as such.
        """
        if self.loaded_at <= moment:
            await self.load()

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._run(), name="campaign-cache")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.load()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("campaign refresh failed: %s", exc)
