"""Ceilings (bare handler, + Kafka acks=all, broker, Postgres), the naive baseline and the
tally alone, all on one embedded stack of our own (real Tansu, real PostgreSQL)."""

from __future__ import annotations

import functools
import hashlib
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.ballots import encoded, make_ballots
from bench.http import best_of, serve_and_hammer
from bench.servers import NAIVE_SCHEMA
from bench.tally_alone import compare, prepared_database
from bench.transport import consume, postgres_inserts, produce
from bench.wrk import bare_with_wrk
from schemas.events import encode_ballot
from services.domain.campaign import Campaign
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore
from tests.support.stack import Stack

BEST_OF = 2  # HTTP ceilings and the capacity probe: the best of two runs


async def transport(stack: Stack, campaign: Campaign, count: int) -> dict[str, float]:
    topic = await stack.new_topic(12, prefix="bench")
    records = encoded(make_ballots(campaign, count, seed=2))
    produced = await produce(stack.bootstrap, topic, records)
    consumed = await consume(stack.bootstrap, topic, count)
    dsn = await stack.new_database()
    return {
        "broker_produce": produced,
        "broker_consume": consumed,
        "pg_copy": await postgres_inserts(dsn),
        "pg_tally_store": await tally_store(stack, campaign),
    }


async def tally_store(stack: Stack, campaign: Campaign, count: int = 20_000) -> float:
    """`PostgresTallyStore.apply` in batches of 2000, no broker: the tally's sink alone."""
    dsn = await prepared_database(stack, campaign)
    ballots = make_ballots(campaign, count, seed=3)
    records = [
        Record(b, i % 12, i, hashlib.sha256(encode_ballot(b)).hexdigest())
        for i, b in enumerate(ballots)
    ]
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = PostgresTallyStore(pool)
        started = time.perf_counter()
        for i in range(0, count, 2000):
            await store.apply(records[i : i + 2000], lambda _id: campaign)
        return count / (time.perf_counter() - started)
    finally:
        await pool.close()


def http_ceilings(stack: Stack, clients: int, seconds: float) -> dict[str, Any]:
    boot = ["--bootstrap", stack.bootstrap]
    servers = {
        "bare": ["bare"],
        "kafka_linger1": ["kafka", *boot, "--linger", "1"],
        "kafka_linger5": ["kafka", *boot, "--linger", "5"],
    }
    found: dict[str, Any] = {"bare_wrk": bare_with_wrk(clients, seconds)}
    for name, argv in servers.items():
        found[name] = best_of(BEST_OF, functools.partial(serve_and_hammer, argv, clients, seconds))
    return found


async def naive(stack: Stack, campaign: Campaign, seconds: float, pool: int) -> dict[str, Any]:
    """Page order at 1, 16 and 64 clients (the baseline), and click order at 64 (deadlocks)."""
    dsn = await stack.new_database()
    out: dict[str, Any] = {"pool": pool}
    for order, clients in (("form", 1), ("form", 16), ("form", 64), ("click", 64)):
        out[f"{order}{clients}"] = await naive_level(dsn, campaign, order, clients, seconds, pool)
    return out


async def naive_level(
    dsn: str, campaign: Campaign, order: str, clients: int, seconds: float, pool: int
) -> dict[str, Any]:
    """One run of the naive app on fresh tables; `correct` compares its votes with the
    client's count."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(NAIVE_SCHEMA)
        await conn.executemany(
            "INSERT INTO naive_candidates (id) VALUES ($1)",
            [(c.id,) for c in campaign.candidates],
        )
        server = ["naive", "--dsn", dsn, "--pool", str(pool), "--order", order]
        result = serve_and_hammer(server, clients, seconds, stats=True)
        stored = await conn.fetchval("SELECT coalesce(sum(votes), 0) FROM naive_candidates")
    finally:
        await conn.close()
    result["correct"] = stored == result["server"]["votes"] >= result["votes"]
    return result


async def tally_alone(stack: Stack, campaign: Campaign, count: int, work: Path) -> Any:
    return await compare(stack, campaign, count, work)
