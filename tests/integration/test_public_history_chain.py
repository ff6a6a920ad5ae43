"""The public campaign history against a real PostgreSQL: its hash chain is recomputable by
anyone from what it shows, and it confirms no organiser's name to someone who guesses one."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
import rfc8785
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.runtime.campaign_routes import add_campaign_routes
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import connect_pool
from tests.support.campaigns import make_campaign

ORGANISER = "console:王小明"  # a name anyone could put on a list of guesses


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database)
    yield pool
    await pool.close()


async def public_history(pool: asyncpg.Pool, cid: str) -> list[dict[str, Any]]:
    store = CampaignStore(pool)
    campaign = make_campaign(cid)
    await store.put(campaign, actor=ORGANISER)
    await store.put(dataclasses.replace(campaign, title="更正后的标题"), actor=ORGANISER)
    cache = CampaignCache(store, refresh=60)
    await cache.load()
    app = web.Application()
    add_campaign_routes(app, cache)
    async with TestClient(TestServer(app)) as client:
        response = await client.get(f"/v1/campaigns/{cid}/history")
        assert response.status == 200
        history: list[dict[str, Any]] = (await response.json())["history"]
    return history


async def test_the_public_chain_names_no_hash_that_confirms_a_guessed_organiser(
    pool: asyncpg.Pool,
) -> None:
    history = await public_history(pool, "named")
    organisers = await CampaignStore(pool).history("named")
    assert len(history) == len(organisers) == 2
    shown = orjson.dumps(history).decode()
    # the organiser's chain covers the actor: any of its hashes lets a guess be checked
    for row in organisers:
        assert row["actor"] == ORGANISER and row["row_hash"] not in shown


async def test_each_public_row_hash_is_recomputed_from_the_rows_public_fields(
    pool: asyncpg.Pool,
) -> None:
    history = await public_history(pool, "chained")
    previous = None
    for row in history:
        assert row["prev_hash"] == previous
        covered = {
            "campaign_id": "chained",
            **{k: row[k] for k in ("seq", "changes", "changed_at", "definition_hash")},
            "prev_hash": previous,
        }
        assert row["row_hash"] == hashlib.sha256(rfc8785.dumps(covered)).hexdigest()
        assert (
            row["definition_hash"] == hashlib.sha256(rfc8785.dumps(row["definition"])).hexdigest()
        )
        previous = row["row_hash"]
