"""WeChat (timestamp, nonce) pairs in Postgres: one body each, shared, forgotten once expired."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from services.ingest.wechat.errors import WeChatReplayError
from services.ingest.wechat.replays import NONCE_RETENTION, Replays
from services.ingest.wechat.store import WeChatStore


async def test_a_pair_answers_its_first_body_again_and_refuses_any_other(database: str) -> None:
    pool = await asyncpg.create_pool(database)
    try:
        # two processes' guards on one database, as two ingest processes
        first, second = Replays(WeChatStore(pool), b"k"), Replays(WeChatStore(pool), b"k")
        query = {"timestamp": str(int(time.time())), "nonce": "1320562132"}
        await first.check(query, b"<xml>real</xml>")
        await second.check(query, b"<xml>real</xml>")  # WeChat's retry, on another process
        with pytest.raises(WeChatReplayError):
            await second.check(query, b"<xml>forged</xml>")
        await first.check({**query, "nonce": "2"}, b"<xml>forged</xml>")  # a new pair is new
        digests = await pool.fetch("SELECT message_digest FROM wechat_nonces")
        assert len(digests) == 2 and all(b"real" not in bytes(r[0]) for r in digests)
    finally:
        await pool.close()


async def test_racing_bodies_under_one_pair_let_exactly_one_through(database: str) -> None:
    pool = await asyncpg.create_pool(database, min_size=8, max_size=8)
    try:
        guard = Replays(WeChatStore(pool), b"k")
        query = {"timestamp": str(int(time.time())), "nonce": "7"}
        bodies = [f"<xml>{n}</xml>".encode() for n in range(8)]
        outcomes = await asyncio.gather(
            *(guard.check(query, b) for b in bodies), return_exceptions=True
        )
        assert sum(o is None for o in outcomes) == 1
        assert all(isinstance(o, WeChatReplayError) for o in outcomes if o is not None)
    finally:
        await pool.close()


async def test_only_pairs_past_the_window_are_forgotten(database: str) -> None:
    pool = await asyncpg.create_pool(database)
    try:
        store = WeChatStore(pool)
        now = int(time.time())
        await store.bind_nonce(now - int(NONCE_RETENTION) - 5, "old", b"x")
        await store.bind_nonce(now - 5, "recent", b"x")
        assert await Replays(store, b"k").forget_expired() == 1
        rows = await pool.fetch("SELECT nonce FROM wechat_nonces")
        assert [r["nonce"] for r in rows] == ["recent"]
    finally:
        await pool.close()
