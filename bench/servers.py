"""The comparison servers, each a minimal aiohttp app on the same framework as ingest:

    python -m bench.servers bare  --port P
    python -m bench.servers kafka --port P --bootstrap HOST:PORT --linger MS
    python -m bench.servers naive --port P --dsn DSN [--pool N]

`bare` parses the ballot and answers 202. `kafka` also produces it (acks=all) and answers
only after the ack, as ingest does. `naive` is what a typical voting site does: per vote, one
transaction that inserts the ballot and runs `UPDATE candidates SET votes = votes + 1` for
each selection, READ COMMITTED (PostgreSQL's default), a pool of N connections, no retry
inside: a deadlock (40P01) rolls back and answers 503. `--order form` updates in page order
(an HTML form posts its checkboxes that way: one lock order, no deadlocks, but every vote
queues on the hot rows); `--order click` in the order the voter picked (deadlocks).
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

ROUTE = "/v1/campaigns/{campaign_id}/ballots"
NAIVE_SCHEMA = """
DROP TABLE IF EXISTS naive_ballots, naive_candidates;
CREATE TABLE naive_candidates (id text PRIMARY KEY, votes bigint NOT NULL DEFAULT 0);
CREATE TABLE naive_ballots (ballot_id uuid PRIMARY KEY, campaign_id text NOT NULL,
    selections text[] NOT NULL, cast_at timestamptz NOT NULL DEFAULT now());
"""


def _answer(body: dict[str, Any]) -> web.Response:
    ballot_id = body.get("ballot_id") or str(uuid.uuid4())
    doc = {"ballot_id": ballot_id, "status": "pending"}
    return web.Response(body=orjson.dumps(doc), status=202, content_type="application/json")


async def bare(request: web.Request) -> web.Response:
    return _answer(orjson.loads(await request.read()))


def kafka_app(bootstrap: str, linger_ms: int) -> web.Application:
    app = web.Application()

    async def handler(request: web.Request) -> web.Response:
        raw = await request.read()
        body = orjson.loads(raw)
        await app["producer"].send_and_wait("bench-ingest", raw, key=body["ballot_id"].encode())
        return _answer(body)

    async def start(app: web.Application) -> None:
        app["producer"] = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms, enable_idempotence=False
        )
        await app["producer"].start()

    async def stop(app: web.Application) -> None:
        await app["producer"].stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post(ROUTE, handler)
    return app


def naive_app(dsn: str, pool_size: int, order: str) -> web.Application:
    app = web.Application()
    stats = {"deadlocks": 0, "committed": 0, "votes": 0}

    async def handler(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        picks = sorted(body["selections"]) if order == "form" else body["selections"]
        try:
            async with app["pool"].acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO naive_ballots (ballot_id, campaign_id, selections)"
                    " VALUES ($1, $2, $3)",
                    uuid.UUID(body["ballot_id"]),
                    request.match_info["campaign_id"],
                    body["selections"],
                )
                for candidate in picks:
                    await conn.execute(
                        "UPDATE naive_candidates SET votes = votes + 1 WHERE id = $1", candidate
                    )
        except asyncpg.DeadlockDetectedError:
            stats["deadlocks"] += 1
            return web.json_response({"error": {"code": "deadlock"}}, status=503)
        stats["committed"] += 1
        stats["votes"] += len(picks)
        return _answer(body)

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def start(app: web.Application) -> None:
        app["pool"] = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)

    async def stop(app: web.Application) -> None:
        app["pool"].terminate()  # transactions stuck in lock waits roll back

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post(ROUTE, handler)
    app.router.add_get("/stats", get_stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bare", "kafka", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap")
    parser.add_argument("--linger", type=int, default=5)
    parser.add_argument("--dsn")
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--order", choices=["form", "click"], default="form")
    args = parser.parse_args()
    if args.kind == "bare":
        app = web.Application()
        app.router.add_post(ROUTE, bare)
    elif args.kind == "kafka":
        app = kafka_app(args.bootstrap, args.linger)
    else:
        app = naive_app(args.dsn, args.pool, args.order)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
