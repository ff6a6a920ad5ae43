"""Campaign definitions in Postgres, and the cache through which every service reads them.

Every service refreshes its cache every `campaign_refresh` seconds, so a change to a
campaign reaches all of them within seconds, without a restart; a campaign a process has
not seen yet is read at once on the first request that names it (`CampaignCache.require`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import yaml

from services.domain.campaign import Campaign, parse_campaign, parse_duration
from services.domain.campaign_changes import campaign_hash, classify_change, history_row_hash
from services.domain.errors import CampaignInvalidError, NotFoundError
from services.runtime.db import DB_ERRORS
from services.runtime.locks import CAMPAIGN_LOCK, LOCK_CAMPAIGN

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
    # YAML reads unquoted timestamps as datetimes; parse_campaign takes them as they are
    # (and refuses naive ones, as it refuses times without an offset).
    return parse_campaign(data)


class CampaignStore:
    """Campaign rows in Postgres."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def put(
        self, campaign: Campaign, *, actor: str = "system", now: datetime | None = None
    ) -> Applied:
        """Creates or changes a campaign if services/domain/campaign_changes.py allows it
        (CampaignLockedError otherwise), recording the change in `campaign_history`; the
        check and the write are one transaction under the campaign row's lock."""
        at = (now or datetime.now(UTC)).astimezone(UTC)  # hashed as stored: in UTC
        async with self.pool.acquire() as conn, conn.transaction():
            # waits for the tally's batches of this campaign, which hold it shared: the
            # check below then sees every ballot they counted, and later ones see this change
            await conn.execute(LOCK_CAMPAIGN, CAMPAIGN_LOCK, campaign.id)
            await conn.execute(
                "INSERT INTO campaigns (id, definition) VALUES ($1, '{}'::jsonb)"
                " ON CONFLICT (id) DO NOTHING",
                campaign.id,
            )
            row = await conn.fetchrow(
                "SELECT definition FROM campaigns WHERE id = $1 FOR UPDATE", campaign.id
            )
            stored = orjson.loads(row["definition"])
            old = parse_campaign(stored) if stored else None
            counted, sealed = await _counted_and_sealed(conn, campaign.id)
            changes = classify_change(old, campaign, counted=counted, sealed=sealed, now=at)
            if not changes:
                return Applied(campaign, ())
            definition = orjson.dumps(campaign.to_dict()).decode()
            await conn.execute(
                "UPDATE campaigns SET definition = $2::jsonb, updated_at = now() WHERE id = $1",
                campaign.id,
                definition,
            )
            await _record(conn, campaign, changes, actor, at)
        return Applied(campaign, changes)

    async def rules_frozen(self, campaign_id: str) -> bool:
        """Whether put() would refuse a change of the counting rules (a ballot counted or
        held, or the final sealed): what a form says before the change is tried."""
        async with self.pool.acquire() as conn:
            counted, sealed = await _counted_and_sealed(conn, campaign_id)
        return counted or sealed

    async def history(self, campaign_id: str) -> list[dict[str, Any]]:
        """The campaign's recorded changes, oldest first (definitions as stored)."""
        rows = await self.pool.fetch(
            "SELECT seq, changes, actor, changed_at, definition, definition_hash, prev_hash,"
            " row_hash FROM campaign_history WHERE campaign_id = $1 ORDER BY seq",
            campaign_id,
        )
        return [
            {
                **dict(r),
                "changes": list(r["changes"]),
                "changed_at": r["changed_at"].isoformat(),
                "definition": orjson.loads(r["definition"]),
            }
            for r in rows
        ]

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
        changed = []
        for row in rows:
            if row["definition"] is None:
                continue
            try:
                changed.append(parse_campaign(orjson.loads(row["definition"])))
            except CampaignInvalidError as exc:
                # One definition a newer release's rules refuse must not stop every service
                # from reading the others: it is named once per change and left out (a
                # reader keeps the last version it could read, if any). No traceback: the
                # message says which campaign and why.
                bad = row["id"]
                log.error("campaign %s: its stored definition does not parse: %s", bad, exc)  # noqa: TRY400
        return {r["id"]: r["updated_at"] for r in rows}, changed

    async def get(self, campaign_id: str) -> Campaign:
        row = await self.pool.fetchrow(
            "SELECT definition FROM campaigns WHERE id = $1", campaign_id
        )
        if row is None:
            raise NotFoundError(f"no campaign {campaign_id!r}", code="unknown_campaign")
        return parse_campaign(orjson.loads(row["definition"]))

    async def close(self, campaign_id: str, at: datetime, *, actor: str = "system") -> Campaign:
        """Closes now (never re-opens, never moves an earlier close later); refused once
        the final is sealed."""
        campaign = await self.get(campaign_id)
        data = campaign.to_dict()
        if at < campaign.closes_at:
            data["closes_at"] = max(at, campaign.opens_at + timedelta(microseconds=1)).isoformat()
        return (await self.put(parse_campaign(data), actor=actor, now=at)).campaign


@dataclass(frozen=True)
class Applied:
    """A definition as stored after a put, and what kind of change it was (empty: none)."""

    campaign: Campaign
    changes: tuple[str, ...]


async def _counted_and_sealed(conn: asyncpg.Connection, campaign_id: str) -> tuple[bool, bool]:
    # a held ballot took its voter's place under these rules, so it locks them like a count
    row = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM ballots WHERE campaign_id = $1"
        "               AND status IN ('counted', 'held')) AS counted,"
        " EXISTS (SELECT 1 FROM snapshots WHERE campaign_id = $1 AND final) AS sealed",
        campaign_id,
    )
    return bool(row["counted"]), bool(row["sealed"])


async def _record(
    conn: asyncpg.Connection,
    campaign: Campaign,
    changes: tuple[str, ...],
    actor: str,
    at: datetime,
) -> None:
    last = await conn.fetchrow(
        "SELECT seq, row_hash FROM campaign_history WHERE campaign_id = $1"
        " ORDER BY seq DESC LIMIT 1",
        campaign.id,
    )
    seq, prev_hash = (last["seq"] + 1, last["row_hash"]) if last else (1, None)
    digest = campaign_hash(campaign)
    row_hash = history_row_hash(
        campaign_id=campaign.id,
        seq=seq,
        changes=changes,
        actor=actor,
        changed_at=at,
        definition_hash=digest,
        prev_hash=prev_hash,
    )
    await conn.execute(
        "INSERT INTO campaign_history (campaign_id, seq, changes, actor, changed_at,"
        " definition, definition_hash, prev_hash, row_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)",
        campaign.id,
        seq,
        list(changes),
        actor,
        at,
        orjson.dumps(campaign.to_dict()).decode(),
        digest,
        prev_hash,
        row_hash,
    )


class CampaignCache:
    """An in-memory copy of all campaigns, refreshed in the background."""

    def __init__(self, store: CampaignStore, refresh: float) -> None:
        self.store = store
        self.refresh = refresh
        self._campaigns: dict[str, Campaign] = {}
        self._versions: dict[str, datetime] = {}  # updated_at of each campaign read
        self._task: asyncio.Task[None] | None = None
        self.loaded_at = datetime.min.replace(tzinfo=UTC)
        self._loading = asyncio.Lock()

    def get(self, campaign_id: str) -> Campaign | None:
        """What this process has read so far; `require` also finds one created a moment ago."""
        return self._campaigns.get(campaign_id)

    def all(self) -> list[Campaign]:
        return list(self._campaigns.values())

    async def find(self, campaign_id: str) -> Campaign | None:
        """The campaign, or None only once Postgres has been asked since the call: behind a
        Service, the pod that created a campaign is rarely the one that gets the next request
        for it, and "no such campaign" for one that exists would be a lie."""
        await self.read_unknown((campaign_id,))
        return self.get(campaign_id)

    async def read_unknown(self, campaign_ids: Iterable[str]) -> None:
        """Reads Postgres once if any of `campaign_ids` has not been read yet (a kiosk batch
        naming several costs one read, not one each); known ones cost nothing."""
        if any(cid not in self._campaigns for cid in campaign_ids):
            await self.fresh_as_of(datetime.now(UTC))

    async def require(self, campaign_id: str) -> Campaign:
        """`find`, with `unknown_campaign` (404) for one that does not exist."""
        await self.find(campaign_id)
        return self.require_loaded(campaign_id)

    def require_loaded(self, campaign_id: str) -> Campaign:
        """`require` for code that cannot wait: only what this process has read already."""
        campaign = self.get(campaign_id)
        if campaign is None:
            raise NotFoundError(f"no campaign {campaign_id!r}", code="unknown_campaign")
        return campaign

    async def load(self) -> None:
        """Reads what changed since the last load (it runs every `refresh` seconds and on
        requests naming a campaign not read yet, so parsing every campaign each time would
        grow with the number of campaigns)."""
        started = datetime.now(UTC)  # before the read: what we read is at least this fresh
        versions, changed = await self.store.changed_since(self._versions)
        campaigns = {cid: c for cid, c in self._campaigns.items() if cid in versions}
        campaigns.update((c.id, c) for c in changed)
        self._campaigns, self._versions = campaigns, versions
        self.loaded_at = started

    async def fresh_as_of(self, moment: datetime) -> None:
        """Reloads unless the copy was read after `moment`: a campaign created, or closed,
        before `moment` is then seen as such (`find` asks with the time of its call)."""
        # One read at a time: requests that wait here behind a read that began after their
        # `moment` take its result instead of reading again, so a flood of unknown ids costs
        # the read in flight and one after it, not a read per request.
        async with self._loading:
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
            except DB_ERRORS as exc:
                log.warning("campaign refresh failed: %s", exc)
