"""The `votestream` command: the whole system, one service, or an operator's task."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from services.domain.errors import CampaignInvalidError, SettingsError, VotestreamError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="votestream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything (embedded unless configured)")
    up.add_argument("--demo", type=Path, help="campaign file to load, open from now")
    up.add_argument("--duration", default="14d", help="how long the demo stays open")
    for name in ("ingest", "tally", "publish"):
        sub.add_parser(name, help=f"run the {name} service")
    campaign = sub.add_parser("campaign", help="load or list campaigns").add_subparsers(
        dest="action", required=True
    )
    load = campaign.add_parser("load", help="validate a campaign file and load it")
    load.add_argument("file", type=Path)
    load.add_argument("--open-now", action="store_true", help="open it now")
    load.add_argument("--duration", default="14d", help="with --open-now: how long")
    campaign.add_parser("list", help="list campaigns")
    recount = sub.add_parser("recount", help="recount from ballot records, compare with results")
    recount.add_argument("campaign_id")
    verify = sub.add_parser("verify", help="verify a snapshot file's hash and signature")
    verify.add_argument("file", type=Path)
    verify.add_argument("--public-key", help="base64 Ed25519 public key (default: ask the API)")
    verify.add_argument(
        "--campaign", help="campaign file, URL or `api`: the definition campaign_hash must match"
    )
    kiosk = sub.add_parser("kiosk", help="kiosk devices and the kiosk agent").add_subparsers(
        dest="action", required=True
    )
    register = kiosk.add_parser("register", help="register a device's public key")
    register.add_argument("device_id")
    register.add_argument("--public-key", required=True, type=Path, help="the keygen .pub file")
    kiosk.add_parser("revoke", help="revoke a device for good").add_argument("device_id")
    kiosk.add_parser("list", help="devices and their batch chains")
    kiosk.add_parser("keygen", help="write a device key pair").add_argument(
        "--out", required=True, type=Path
    )
    from services.kiosk_agent.commands import add_agent_arguments

    add_agent_arguments(kiosk.add_parser("agent", help="run the agent on a kiosk"))
    from services.loadgen.command import add_arguments as loadgen_arguments

    loadgen_arguments(sub.add_parser("loadgen", help="drive a running system with real traffic"))
    from services.deploy_commands import add_arguments as deploy_arguments

    deploy_arguments(sub)
    from services.ingest.defenses_commands import add_arguments as defenses_arguments

    defenses_arguments(sub.add_parser("defenses", help="stuffing detections and held ballots"))
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        sys.exit(_dispatch(args))
    except CampaignInvalidError as exc:
        print("campaign refused, nothing loaded:", file=sys.stderr)
        for error in exc.errors:
            print(f"  - {error}", file=sys.stderr)
        sys.exit(2)
    except (SettingsError, VotestreamError) as exc:
        print(f"votestream: {exc}", file=sys.stderr)
        sys.exit(2)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "up":
        from services.runtime.supervisor import up

        return up(dict(os.environ), args.demo, args.duration)
    if args.command == "loadgen":
        from services.loadgen.command import run as loadgen

        return loadgen(args)
    if args.command in ("ingest", "tally", "publish"):
        module = __import__(f"services.{args.command}.__main__", fromlist=["main"])
        sys.argv = [sys.argv[0], "worker"] if args.command == "tally" else sys.argv[:1]
        module.main()
        return 0
    if args.command == "kiosk" and args.action in ("keygen", "agent"):
        from services.kiosk_agent.commands import run_kiosk_command

        return run_kiosk_command(args)
    if args.command == "kiosk":
        from services.ingest.kiosk.commands import run_registry_command

        return asyncio.run(run_registry_command(args))
    if args.command in ("migrate", "keygen"):
        from services import deploy_commands

        if args.command == "keygen":
            return deploy_commands.keygen(args)
        return asyncio.run(deploy_commands.migrate(args))
    if args.command == "defenses":
        from services.ingest.defenses_commands import run as defenses

        return asyncio.run(defenses(args))
    from services import operator

    if args.command == "campaign":
        return asyncio.run(operator.campaign(args))
    if args.command == "recount":
        return asyncio.run(operator.recount(args.campaign_id))
    if args.command == "verify":
        return operator.verify(args.file, args.public_key, args.campaign)
    return 2
