"""Answered WeChat messages are deleted after the retention; the outbox never is."""

from __future__ import annotations

import uuid

import asyncpg

from services.ingest.wechat.store import WeChatStore

DAY = 24 * 3600.0


async def test_only_answered_messages_older_than_the_retention_are_deleted(database: str) -> None:
    pool = await asyncpg.create_pool(database)
    try:
        store = WeChatStore(pool)
        await store.claim("answered-old", reply="ok")
        await store.claim("answered-new", reply="ok")
        await store.claim("outbox-old", ballot_id=uuid.uuid4(), ballot=b"{}")  # no reply yet
        await pool.execute(
            "UPDATE wechat_messages SET created_at = now() - interval '2 days'"
            " WHERE message_key IN ('answered-old', 'outbox-old')"
        )
        assert await store.forget_answered(DAY) == 1
        assert await store.forget_answered(DAY) == 0
        keys = await pool.fetch("SELECT message_key FROM wechat_messages ORDER BY 1")
        assert [r["message_key"] for r in keys] == ["answered-new", "outbox-old"]
        assert await store.unconfirmed(older_than=0) == [("outbox-old", b"{}")]
    finally:
        await pool.close()
