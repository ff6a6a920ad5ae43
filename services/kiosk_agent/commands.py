"""`votestream kiosk keygen | agent`: what runs on the kiosk itself."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from services.kiosk_agent.agent import AgentSettings, run_agent_until_stopped
from services.kiosk_agent.keys import keygen
from services.runtime.logs import setup_logging


def add_agent_arguments(agent: argparse.ArgumentParser) -> None:
    agent.add_argument("--server", required=True, help="the ingest base URL")
    agent.add_argument("--device-id", required=True)
    agent.add_argument("--key", required=True, type=Path, help="the device's secret key file")
    agent.add_argument("--data", required=True, type=Path, help="where the queue lives")
    agent.add_argument("--listen", default="127.0.0.1:8090", help="local endpoint HOST:PORT")
    agent.add_argument("--batch-size", type=int, default=100)
    agent.add_argument("--max-backoff", type=float, default=30.0, help="seconds")
    agent.add_argument(
        "--sealing-key",
        help="the server's voter_ref key (base64; `votestream kiosk register` prints it);"
        " default: the one pinned in --data, else fetched from the server once",
    )
    agent.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        help="an origin allowed to call the local API (a browser-based voting screen)",
    )


def run_kiosk_command(args: argparse.Namespace) -> int:
    return run_keygen(args.out) if args.action == "keygen" else run_agent(args)


def run_keygen(out: Path) -> int:
    public = keygen(out)
    print(f"secret key {out} (keep it on the kiosk)\npublic key {public}: {public.read_text()}")
    return 0


def run_agent(args: argparse.Namespace) -> int:
    setup_logging("kiosk-agent")
    host, _, port = args.listen.rpartition(":")
    settings = AgentSettings(
        server=args.server,
        device_id=args.device_id,
        key_file=args.key,
        data_dir=args.data,
        host=host or "127.0.0.1",
        port=int(port),
        batch_size=args.batch_size,
        max_backoff=args.max_backoff,
        sealing_key=args.sealing_key,
        allowed_origins=tuple(args.allow_origin),
    )
    asyncio.run(run_agent_until_stopped(settings))
    return 0
