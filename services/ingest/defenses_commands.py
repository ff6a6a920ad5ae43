"""`votestream defenses detections | held | release | reject | decisions CAMPAIGN_ID`."""

from __future__ import annotations

import argparse
import os
from uuid import UUID

import orjson

from services.domain.errors import MalformedError
from services.ingest.held import HeldBallots
from services.runtime.db import connect_pool
from services.runtime.settings import Settings

PAGE = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("detections", help="what the rules found").add_argument("campaign_id")
    held = actions.add_parser("held", help="ballots awaiting a decision")
    held.add_argument("campaign_id")
    held.add_argument("--rule", help="only those this rule held")
    for verb in ("release", "reject"):
        decide = actions.add_parser(verb, help=f"{verb} held ballots (recorded in the audit)")
        decide.add_argument("campaign_id")
        decide.add_argument("ballot_ids", nargs="*", type=UUID, help="the ballots (or --rule)")
        decide.add_argument("--rule", help="every ballot this rule holds")
        decide.add_argument("--actor", required=True, help="who decides")
        decide.add_argument("--reason", required=True, help="why")
    actions.add_parser("decisions", help="the audit of decisions").add_argument("campaign_id")


async def run(args: argparse.Namespace) -> int:
    pool = await connect_pool(Settings.from_env(os.environ).dsn, max_size=2)
    try:
        held = HeldBallots(pool)
        if args.action in ("release", "reject"):
            if bool(args.ballot_ids) == bool(args.rule):
                raise MalformedError("give ballot ids or --rule", code="bad_decision")
            decided = await held.decide(
                args.campaign_id,
                args.action,
                actor=args.actor,
                reason=args.reason,
                ballot_ids=args.ballot_ids,
                rule=args.rule,
            )
            print(f"{args.action.rstrip('e')}ed {len(decided.ballot_ids)} held ballot(s)")
            return 0
        if args.action == "detections":
            rows = await held.detections(args.campaign_id, 0, PAGE)
        elif args.action == "held":
            rows = await held.held(args.campaign_id, args.rule, PAGE)
        else:
            rows = await held.decisions(args.campaign_id, 0, PAGE)
        for row in rows:
            print(orjson.dumps(row).decode())
        return 0
    finally:
        await pool.close()
