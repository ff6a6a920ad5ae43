"""CPU seconds per accepted web ballot of a real `votestream ingest` process (Postgres and
the embedded broker behind it, no tally), read from the process's own CPU clock while a
separate client process casts ballots: other work on the machine moves it far less than a
wall-clock rate does. Optionally a py-spy SVG flame graph of ingest under that load.

    python -m bench.ingest_cpu [--ballots 6000] [--clients 64] [--rate 0] [--runs 2] [--flame DIR]
                               [--ingest-from CHECKOUT --ingest-from CHECKOUT ...]

With `--ingest-from` given more than once, each run measures ingest started from each of
those checkouts in turn (say, an export of the last commit and this tree): alternating A/B
runs on the same broker and Postgres, so a change is told apart from the machine's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from bench.endtoend import SYSTEM_ENV
from bench.tally_alone import prepared_database
from bench.tally_cpu_run import cpu_seconds, flame_graph
from services.runtime.campaigns import read_campaign_file
from services.runtime.kafka import ensure_topics
from services.runtime.processes import free_port, port_open, wait_until
from tests.support.stack import Stack, start_stack
from tests.support.system import DEMO

SECRET = "bench-secret-" + "x" * 32


def ingest_process(
    stack: Stack, dsn: str, port: int, data: Path, source: Path | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOTESTREAM_KAFKA_BOOTSTRAP": stack.bootstrap,
        "VOTESTREAM_DATABASE_URL": dsn,
        "VOTESTREAM_INGEST_PORT": str(port),
        "VOTESTREAM_DATA_DIR": str(data),
        "VOTESTREAM_ADMIN_TOKEN": "bench-admin-" + "y" * 24,
        "VOTESTREAM_IDENTITY_KEY": "bench-identity-" + "z" * 32,
        "VOTESTREAM_WEB_JWT_SECRET": SECRET,
        "VOTESTREAM_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **SYSTEM_ENV,  # one client address: the per-network limit as in the end-to-end runs
    }
    log = open(data / "ingest.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "services.ingest"],
        env=env,
        cwd=source,  # `-m` imports the services package from the working directory first
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def cast(url: str, tokens: list[str], clients: int, rate: float = 0) -> dict[str, int]:
    """`clients` connections, one ballot per token, each with its own ballot_id: as fast as
    answers come (closed loop), or the i-th ballot sent at i / `rate` seconds when a
    connection is free. At a fixed rate below what ingest can take, both versions of an
    A/B run batch their Kafka produces and ballot-id lookups alike: a closed loop lets the
    faster one (or the one the machine's other work slowed less) batch more."""
    body = b'{"selections": ["c01", "c05", "c09"], "ballot_id": "%s"}'
    statuses: dict[str, int] = {}
    queue = enumerate(tokens)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def client(session: aiohttp.ClientSession) -> None:
        for i, token in queue:
            if rate and (wait := start + i / rate - loop.time()) > 0:
                await asyncio.sleep(wait)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            data = body % str(uuid.uuid4()).encode()
            async with session.post(url, data=data, headers=headers) as response:
                await response.read()
                statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return statuses


def client_main(url: str, count: int, clients: int, rate: float) -> None:
    now = int(time.time())
    tokens = [
        jwt.encode({"sub": f"cpu-{now}-{i}", "iat": now, "exp": now + 600}, SECRET, "HS256")
        for i in range(count)
    ]
    print(json.dumps(asyncio.run(cast(url, tokens, clients, rate))), flush=True)


def load(url: str, count: int, clients: int, rate: float = 0) -> dict[str, int]:
    argv = [sys.executable, "-m", "bench.ingest_cpu", "--client", url]
    argv += ["--ballots", str(count), "--clients", str(clients), "--rate", str(rate)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
    answer: dict[str, int] = json.loads(done.stdout.splitlines()[-1])
    return answer


async def measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp) / "stack")
        try:
            await ensure_topics(stack.bootstrap, 12)
            sources: list[Path | None] = args.ingest_from or [None]
            for run in range(args.runs):
                for n, source in enumerate(sources):
                    figures = await one(stack, args, Path(tmp), f"{run}-{n}", source)
                    print(json.dumps({"ingest_from": str(source or "."), **figures}), flush=True)
        finally:
            stack.postgres.stop()
            stack.broker.stop()


async def one(
    stack: Stack, args: argparse.Namespace, tmp: Path, run: str, source: Path | None
) -> dict[str, Any]:
    campaign = read_campaign_file(DEMO, open_now=True)
    dsn = await prepared_database(stack, campaign)
    port = free_port()
    data = tmp / f"ingest-{run}"
    data.mkdir()
    proc = ingest_process(stack, dsn, port, data, source)
    url = f"http://127.0.0.1:{port}/v1/campaigns/{campaign.id}/ballots"
    spy = None
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 60, "ingest")
        load(url, 500, 8)  # warm up: connections, caches, the producer's metadata
        cpu0 = cpu_seconds(proc.pid)
        if args.flame is not None:
            spy = flame_graph(proc.pid, args.flame / f"ingest-{run}.{args.flame_format}")
        began = time.monotonic()
        statuses = load(url, args.ballots, args.clients, args.rate)
        cpu = cpu_seconds(proc.pid) - cpu0
        rate = round(args.ballots / (time.monotonic() - began))
        accepted = statuses.get("202", 0)
        per_ballot = round(1e6 * cpu / max(accepted, 1), 1)
        # the rate includes the load process's start and its tokens' signing
        return {"us_per_ballot": per_ballot, "ballots_per_s": rate, "statuses": statuses}
    finally:
        if spy is not None:
            spy.wait(30)
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ballots", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0, help="ballots/s (0: closed loop)")
    parser.add_argument("--flame", type=Path, help="a folder for a py-spy SVG flame graph")
    parser.add_argument("--flame-format", default="svg", choices=["svg", "txt"])
    parser.add_argument(
        "--ingest-from", type=Path, action="append", help="a checkout to run ingest from"
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)  # the load process itself
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.ballots, args.clients, args.rate)
    else:
        asyncio.run(measure(args))


if __name__ == "__main__":
    main()
