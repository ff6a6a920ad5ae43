"""The tally's work without Faust: a plain aiokafka loop feeding the same Postgres store.

    python -m bench.plain_tally --bootstrap B --dsn D --group G --count N

Same batches (up to 2000 records or 50 ms), same decode and receipt digest, same
`PostgresTallyStore.apply`, offsets committed after the transaction, as the Faust agent does.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib

from aiokafka import AIOKafkaConsumer

from schemas.events import decode_event
from services.runtime.campaigns import CampaignCache, CampaignStore
from services.runtime.db import connect_pool
from services.runtime.kafka import BALLOTS
from services.tally.counting import Record
from services.tally.store import PostgresTallyStore


async def run(bootstrap: str, dsn: str, group: str, count: int) -> None:
    pool = await connect_pool(dsn, max_size=4)
    campaigns = CampaignCache(CampaignStore(pool), 1.0)
    await campaigns.start()
    store = PostgresTallyStore(pool)
    consumer = AIOKafkaConsumer(
        BALLOTS,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    await consumer.start()
    try:
        done = 0
        while done < count:
            batch = await consumer.getmany(timeout_ms=50, max_records=2000)
            records = [
                Record(
                    decode_event(m.value),
                    m.partition,
                    m.offset,
                    hashlib.sha256(m.value).hexdigest(),
                )
                for messages in batch.values()
                for m in messages
                if m.value is not None
            ]
            if records:
                await store.apply(records, campaigns.get)
                await consumer.commit()
                done += len(records)
    finally:
        await consumer.stop()
        await campaigns.stop()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--bootstrap", "--dsn", "--group"):
        parser.add_argument(name, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(run(args.bootstrap, args.dsn, args.group, args.count))


if __name__ == "__main__":
    main()
