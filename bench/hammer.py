"""The HTTP client for the comparison servers, in its own process so it never shares an event
loop with a server: closed loop, N clients, D seconds, one valid ballot per request. It is the
loadgen's own driver with an unauthenticated channel, so every server meets the same client.

    python -m bench.hammer URL --clients N --seconds D  ->  one JSON line on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

import aiohttp
import orjson

from services.loadgen.driver import Driver, Stats
from services.loadgen.traffic import Mix, Shot, Traffic
from services.runtime.campaigns import read_campaign_file
from tests.support.system import DEMO


@dataclass
class PlainChannel:
    url: str
    name: str = "web"

    async def send(self, http: aiohttp.ClientSession, shot: Shot) -> int:
        body = orjson.dumps({"selections": shot.selections, "ballot_id": str(shot.ballot_id)})
        headers = {"Content-Type": "application/json"}
        async with http.post(self.url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def start_session(self, http: aiohttp.ClientSession, voter: str) -> None:
        return None

    def expected(self, shot: Shot) -> int:
        return 202


async def hammer(url: str, clients: int, seconds: float) -> dict[str, object]:
    campaign = read_campaign_file(DEMO, open_now=True)
    traffic = Traffic(campaign, Mix(("web",), 0, 0, 0), "bench", 7)
    stats = Stats()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:
        driver = Driver(http, {"web": PlainChannel(url)}, stats)
        started = time.perf_counter()
        cpu = time.process_time()
        try:  # a server stuck in lock waits must not hold the whole benchmark
            await asyncio.wait_for(
                driver.closed_loop(traffic.sessions(), clients, seconds), seconds + 10
            )
        except TimeoutError:
            stats.unexpected[0] += driver.inflight  # 0: no answer before the hard stop
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    latency = stats.latency.get("web")
    return {
        "rate": stats.accepted / elapsed,
        "accepted": stats.accepted,
        "votes": sum(stats.own.tally.votes.values()),
        "retries": stats.retries,
        "lost": stats.lost,
        "unexpected": {str(k): v for k, v in stats.unexpected.items()},
        "p50_ms": latency.ms(50) if latency else 0.0,
        "p99_ms": latency.ms(99) if latency else 0.0,
        "client_cpu": cpu / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    result = asyncio.run(hammer(args.url, args.clients, args.seconds))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
