"""The admin campaign API against a real PostgreSQL: what may change once ballots are counted.

A ballot is counted by the tally's own store, a final is sealed by the publisher's; the
requests go through the admin routes as the organiser sends them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import pwd
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services import operator
from services.domain.ballot import Ballot
from services.domain.campaign_changes import campaign_hash, history_row_hash
from services.ingest import admin
from services.ingest.deps import DEPS, IngestDeps
from services.publish.snapshots import Publisher
from services.publish.store import SnapshotStore
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.http import errors_as_json
from services.runtime.settings import Settings
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.support.campaigns import make_campaign
from tests.support.system import REPO
from tests.support.waiting import eventually_async

TOKEN = "integrity-admin"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


class Rig:
    def __init__(self, pool: asyncpg.Pool, client: TestClient[Any, Any]) -> None:
        self.pool, self.client = pool, client
        self.store = CampaignStore(pool)

    async def put(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await self.client.put(
            f"/v1/admin/campaigns/{data['id']}", json=data, headers=HEADERS
        )
        return response.status, await response.json()

    async def close(self, campaign_id: str) -> tuple[int, dict[str, Any]]:
        response = await self.client.post(
            f"/v1/admin/campaigns/{campaign_id}/close", headers=HEADERS
        )
        return response.status, await response.json()

    async def history(self, campaign_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/v1/admin/campaigns/{campaign_id}/history", headers=HEADERS
        )
        assert response.status == 200
        return list((await response.json())["history"])

    async def count_a_ballot(self, campaign_id: str) -> None:
        """One ballot through the tally's own batch transaction."""
        campaign = await self.store.get(campaign_id)
        now = datetime.now(UTC)
        voter = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        ballot = Ballot(uuid.uuid4(), campaign_id, "web", voter, ("c1",), now, now)
        written = await PostgresTallyStore(self.pool).apply(
            [Record(ballot, 0, 0, "r" * 64)], {campaign_id: campaign}.get
        )
        assert [r["status"] for r in written.rows] == ["counted"]

    async def seal_final(self, campaign_id: str) -> dict[str, Any]:
        """The publisher seals the final once the tally passed the cut-off everywhere."""
        campaign = await self.store.get(campaign_id)
        await self.pool.execute(
            "INSERT INTO cutoffs (campaign_id, partitions) VALUES ($1, 1)", campaign_id
        )
        await self.pool.execute(
            "INSERT INTO cutoff_marks (campaign_id, source_partition) VALUES ($1, 0)",
            campaign_id,
        )

        async def no_cutoff(_: Any) -> int:
            raise AssertionError("the cut-off is recorded already")

        publisher = Publisher(
            SnapshotStore(self.pool),
            Ed25519PrivateKey.generate(),
            no_cutoff,
            clock=lambda: campaign.cutoff + timedelta(seconds=1),
        )
        final = await publisher.publish(campaign)
        assert final is not None and final["final"]
        return final


@pytest.fixture
async def rig(database: str, tmp_path: Path) -> AsyncIterator[Rig]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    store = CampaignStore(pool)
    deps = cast(
        IngestDeps,
        type(
            "AdminDeps",
            (),
            {
                "settings": Settings(data_dir=tmp_path, admin_token=TOKEN),
                "campaign_store": store,
                "campaigns": CampaignCache(store, refresh=60),
            },
        )(),
    )
    app = web.Application(middlewares=[errors_as_json])
    app[DEPS] = deps
    admin.register(app)
    try:
        async with TestClient(TestServer(app)) as client:
            yield Rig(pool, client)
    finally:
        await pool.close()


def definition(cid: str, **changes: Any) -> dict[str, Any]:
    data = make_campaign(cid).to_dict()
    data.update(changes)
    return data


async def test_candidates_cannot_change_once_a_ballot_is_counted(rig: Rig) -> None:
    data = definition("locked")
    assert (await rig.put(data))[0] == 200
    before_counting = [*data["candidates"], {"id": "c5", "title": "C5", "unit": "u"}]
    status, _ = await rig.put({**data, "candidates": before_counting})
    assert status == 200  # nothing counted yet: the rules may still change
    await rig.count_a_ballot("locked")
    stored = (await rig.store.get("locked")).to_dict()
    rows = len(await rig.history("locked"))
    changes: list[dict[str, Any]] = [
        {"candidates": before_counting[:4]},
        {"candidates": [*before_counting[:4], {"id": "c9", "title": "C5", "unit": "u"}]},
        {"ballot": {"min_selections": 1, "max_selections": 1}},
        {"limit": {"per_voter": 2, "period": "campaign"}},
        {"channels": {"web": {}}},
        {"opens_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()},
    ]
    for change in changes:
        status, body = await rig.put({**stored, **change})
        assert status == 409, change
        assert body["error"]["code"] == "campaign_locked"
    assert (await rig.store.get("locked")).to_dict() == stored
    assert len(await rig.history("locked")) == rows


async def test_wording_extending_and_closing_early_are_allowed_and_recorded(rig: Rig) -> None:
    data = definition("worded")
    await rig.put(data)
    await rig.count_a_ballot("worded")
    renamed = [{**c, "title": f"{c['title']} (new)", "unit": "dept"} for c in data["candidates"]]
    status, body = await rig.put(
        {**data, "title": "Better title", "question": "Which?", "candidates": renamed}
    )
    assert status == 200 and body["title"] == "Better title"
    later = datetime.fromisoformat(data["closes_at"]) + timedelta(days=2)
    status, body = await rig.put({**body, "closes_at": later.isoformat()})
    assert status == 200
    status, closed = await rig.close("worded")
    assert status == 200
    assert datetime.fromisoformat(closed["closes_at"]) <= datetime.now(UTC)
    history = await rig.history("worded")
    assert [h["changes"] for h in history] == [
        ["created"],
        ["wording"],
        ["extended"],
        ["closed_early"],
    ]
    assert all(h["actor"] == "admin-api" for h in history)
    current = await rig.store.get("worded")
    assert history[-1]["definition_hash"] == campaign_hash(current)
    # each row's hash covers the previous one: the chain checks out from its own fields
    prev = None
    for row in history:
        assert row["prev_hash"] == prev
        expected = history_row_hash(
            campaign_id="worded",
            seq=row["seq"],
            changes=tuple(row["changes"]),
            actor=row["actor"],
            changed_at=datetime.fromisoformat(row["changed_at"]),
            definition_hash=row["definition_hash"],
            prev_hash=prev,
        )
        assert row["row_hash"] == expected
        prev = row["row_hash"]
    status, body = await rig.put(
        {**current.to_dict(), "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    )
    assert status == 409 and body["error"]["code"] == "campaign_locked"  # no reopening


async def test_nothing_changes_after_the_final(rig: Rig) -> None:
    now = datetime.now(UTC)
    data = definition(
        "sealed",
        opens_at=(now - timedelta(hours=2)).isoformat(),
        closes_at=(now + timedelta(minutes=10)).isoformat(),
        kiosk_grace="1s",
    )
    await rig.put(data)
    await rig.count_a_ballot("sealed")
    assert (await rig.close("sealed"))[0] == 200
    final = await rig.seal_final("sealed")
    current = (await rig.store.get("sealed")).to_dict()
    assert final["campaign_hash"] == campaign_hash(await rig.store.get("sealed"))
    rows = len(await rig.history("sealed"))
    for attempt in (
        rig.put({**current, "title": "renamed after the final"}),
        rig.put({**current, "closes_at": (now + timedelta(days=3)).isoformat()}),
        rig.close("sealed"),
    ):
        status, body = await attempt
        assert status == 409 and body["error"]["code"] == "campaign_locked"
    assert (await rig.store.get("sealed")).to_dict() == current
    assert len(await rig.history("sealed")) == rows


async def test_history_rows_cannot_be_updated_deleted_or_truncated(rig: Rig) -> None:
    await rig.put(definition("kept"))
    for statement in (
        "UPDATE campaign_history SET actor = 'someone else' WHERE campaign_id = 'kept'",
        "DELETE FROM campaign_history WHERE campaign_id = 'kept'",
        "TRUNCATE campaign_history",
    ):
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await rig.pool.execute(statement)
    assert [h["actor"] for h in await rig.history("kept")] == ["admin-api"]


async def test_a_rules_change_waits_for_a_batch_counting_the_first_ballot(rig: Rig) -> None:
    """The tally's batch and the change of its campaign never overlap: a change that starts
    while a batch is counting the campaign's first ballot sees it, and is refused."""
    data = definition("racing")
    await rig.put(data)
    campaign = await rig.store.get("racing")
    now = datetime.now(UTC)
    voter = hashlib.sha256(b"racing").hexdigest()
    ballot = Ballot(uuid.uuid4(), "racing", "web", voter, ("c1",), now, now)
    async with rig.pool.acquire() as gate, gate.transaction():
        # the batch stops at its cut-off read, inside its transaction, its locks taken
        await gate.execute("LOCK TABLE cutoff_marks IN ACCESS EXCLUSIVE MODE")
        batch = asyncio.create_task(
            PostgresTallyStore(rig.pool).apply(
                [Record(ballot, 0, 0, "r" * 64)], {"racing": campaign}.get
            )
        )

        async def waiting(n: int) -> bool:
            found = await rig.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            return bool(found == n)

        await eventually_async(lambda: waiting(1), 30, "the batch waiting at its cut-off read")
        fewer = [c for c in data["candidates"] if c["id"] != "c4"]
        change = asyncio.create_task(rig.put({**data, "candidates": fewer}))

        await eventually_async(lambda: waiting(2), 30, "the change waiting for the batch")
    written = await batch
    assert [r["status"] for r in written.rows] == ["counted"]
    status, body = await change
    assert status == 409 and body["error"]["code"] == "campaign_locked"
    assert (await rig.store.get("racing")).to_dict() == campaign.to_dict()


def load(dsn: str, path: Path) -> subprocess.CompletedProcess[str]:
    """`votestream campaign load FILE` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services", "campaign", "load", str(path)],
        env={**os.environ, "VOTESTREAM_DATABASE_URL": dsn},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_campaign_load_follows_the_same_rules(
    rig: Rig, database: str, tmp_path: Path
) -> None:
    data = definition("loaded")
    path = tmp_path / "loaded.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    done = await asyncio.to_thread(load, database, path)
    assert done.returncode == 0 and "(created)" in done.stdout, done.stderr
    await rig.count_a_ballot("loaded")
    path.write_text(yaml.safe_dump({**data, "top_n": 1}), "utf-8")
    done = await asyncio.to_thread(load, database, path)
    assert done.returncode == 2 and "counting rules are frozen" in done.stderr
    assert (await rig.store.get("loaded")).top_n == 2
    path.write_text(yaml.safe_dump({**data, "title": "Clearer"}), "utf-8")
    done = await asyncio.to_thread(load, database, path)
    assert done.returncode == 0 and "(wording)" in done.stdout, done.stderr
    history = await rig.history("loaded")
    assert [h["changes"] for h in history] == [["created"], ["wording"]]
    assert all(h["actor"].startswith("cli:") for h in history)


async def test_campaign_load_by_a_user_without_a_name_records_the_uid(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a container whose user (runAsUser 10001) has no passwd entry and no $USER."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> Any:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setenv("VOTESTREAM_DATABASE_URL", database)
    path = tmp_path / "nameless.yaml"
    path.write_text(yaml.safe_dump(definition("nameless")), "utf-8")
    args = argparse.Namespace(action="load", file=path, open_now=False, duration="14d")
    assert await operator.campaign(args) == 0
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    try:
        history = await CampaignStore(pool).history("nameless")
    finally:
        await pool.close()
    assert [h["actor"] for h in history] == [f"cli:uid {os.getuid()}"]
