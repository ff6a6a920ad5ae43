"""`votestream loadgen`: arguments, one run, the report and its exit code."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from services.domain.campaign import CHANNELS, Campaign, parse_campaign, parse_duration
from services.ingest.wechat.crypto import WeChatCipher
from services.loadgen.channels import Channel, WebChannel
from services.loadgen.driver import Driver, Stats, error_kind
from services.loadgen.kiosk import KioskChannel
from services.loadgen.lookalike import LookalikePhones, stuffers_expected
from services.loadgen.progress import show_progress
from services.loadgen.report import ballot_ids, report, summary
from services.loadgen.stuffers import (
    ForgedWeChat,
    Stuffer,
    Target,
    run_stuffers,
    stuffing_report,
)
from services.loadgen.totals import Results
from services.loadgen.traffic import Mix, Traffic
from services.loadgen.wechat import WeChatChannel
from services.runtime.settings import Settings

# The one place stuffers are registered: name -> builder.
STUFFERS: dict[str, Callable[[Target], Stuffer]] = {
    ForgedWeChat.name: ForgedWeChat,
    LookalikePhones.name: LookalikePhones,
}


def build_stuffers(names: tuple[str, ...], target: Target) -> list[Stuffer]:
    unknown = [n for n in names if n not in STUFFERS]
    if unknown:
        raise SystemExit(f"loadgen: unknown stuffer(s) {unknown}; choose from {tuple(STUFFERS)}")
    return [STUFFERS[n](target) for n in names]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--campaign", required=True, help="an open campaign's id")
    parser.add_argument("--target-ingest", help="ingest base URL (default: from settings)")
    parser.add_argument("--target-publish", help="publish base URL (default: from settings)")
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--rate", type=float, help="open loop: requests per second offered")
    load.add_argument("--concurrency", type=int, help="closed loop: clients (default 16)")
    parser.add_argument("--duration", default="10s", type=_seconds, help="e.g. 30s, 2m")
    parser.add_argument("--channels", default="web", help="comma-separated: web,wechat,kiosk")
    parser.add_argument("--duplicate-rate", type=float, default=0.05, help="retried ballots")
    parser.add_argument("--repeat-rate", type=float, default=0.05, help="voters over the limit")
    parser.add_argument("--invalid-rate", type=float, default=0.02, help="junk requests")
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument(
        "--stuffers", default="", help="attackers beside the voters: forged-wechat,lookalike-phone"
    )
    parser.add_argument("--stuff-rate", type=float, default=10.0, help="forged requests/s each")
    parser.add_argument("--max-inflight", type=int, default=2000, help="open-loop client cap")
    parser.add_argument("--settle-timeout", type=float, default=60.0, help="wait for totals")
    parser.add_argument("--no-check", action="store_true", help="skip the published totals")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--ballot-ids", type=Path, help="write the ids answered 202 (JSON)")


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return parse_duration(text).total_seconds()


def run(args: argparse.Namespace) -> int:
    channels = tuple(c.strip() for c in args.channels.split(",") if c.strip())
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or not channels:
        print(f"loadgen: unknown channel(s) {unknown}; choose from {CHANNELS}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_run(args, Settings.from_env(os.environ), channels))
    except (aiohttp.ClientError, TimeoutError) as exc:  # before the load: nothing to report
        print(f"loadgen: the target does not answer ({error_kind(exc)}): {exc}", file=sys.stderr)
        return 2
    for line in stuffing_report(result["stuffers"]):
        print(line)
    print(report(result))
    if args.json:
        stuffed = {s.name: s.stats.summary() for s in result["stuffers"]}
        done = summary(result) | {"stuffers": stuffed}
        args.json.write_bytes(orjson.dumps(done, option=orjson.OPT_INDENT_2))
    if args.ballot_ids:
        args.ballot_ids.write_bytes(orjson.dumps(ballot_ids(result)))
    return 0 if result["ok"] else 1


async def _run(args: argparse.Namespace, settings: Settings, names: tuple[str, ...]) -> Any:
    ingest = args.target_ingest or f"http://{settings.host}:{settings.ingest_port}"
    publish = args.target_publish or f"http://{settings.host}:{settings.publish_port}"
    limit = args.concurrency or args.max_inflight if args.rate else args.concurrency or 16
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        campaign = await _campaign(http, ingest, args.campaign)
        run_id = secrets.token_hex(4)
        channels = await build_channels(http, names, campaign, ingest, settings, run_id)
        mix = Mix(names, args.duplicate_rate, args.repeat_rate, args.invalid_rate)
        traffic = Traffic(campaign, mix, run_id, args.seed)
        results = Results(http, publish, campaign.id)
        baseline = await results.latest()
        driver = Driver(http, channels, Stats())
        attackers = tuple(n.strip() for n in args.stuffers.split(",") if n.strip())
        stuffers = build_stuffers(attackers, Target(ingest, campaign, settings))
        stuffing = asyncio.create_task(run_stuffers(http, stuffers, args.stuff_rate, args.duration))
        progress = None if args.quiet else asyncio.create_task(show_progress(driver, args.duration))
        started = asyncio.get_running_loop().time()
        try:
            if args.rate:
                rate = args.rate / traffic.shots_per_session
                await driver.open_loop(traffic.sessions(), rate, args.duration, args.max_inflight)
            else:
                await driver.closed_loop(traffic.sessions(), args.concurrency or 16, args.duration)
        finally:
            driver.stats.seconds = asyncio.get_running_loop().time() - started
            if progress is not None:
                progress.cancel()
                print(file=sys.stderr)
            await stuffing
        expected = baseline + driver.stats.own.tally + stuffers_expected(stuffers)
        published, waited = (expected, 0.0)
        if not args.no_check:
            published, waited = await results.settle(expected, args.settle_timeout)
    return _outcome(args, campaign, driver.stats, stuffers, expected, published, waited)


def _outcome(
    args: argparse.Namespace,
    campaign: Campaign,
    stats: Stats,
    stuffers: list[Stuffer],
    expected: Any,
    published: Any,
    waited: float,
) -> dict[str, Any]:
    differences = [] if args.no_check else expected.differences(published)
    clean = not stats.unexpected and not stats.lost and not stats.own.uncertain
    clean = clean and not any(s.stats.taken or s.stats.errors for s in stuffers)
    mode = f"open loop {args.rate:g}/s" if args.rate else f"closed loop {args.concurrency or 16}"
    return {
        "campaign": campaign.id,
        "mode": mode,
        "stats": stats,
        "stuffers": stuffers,
        "expected": expected,
        "published": published,
        "waited": waited,
        "differences": differences,
        "checked": not args.no_check,
        "ok": clean and not differences,
    }


async def _campaign(http: aiohttp.ClientSession, ingest: str, campaign_id: str) -> Campaign:
    async with http.get(f"{ingest}/v1/campaigns/{campaign_id}") as response:
        if response.status != 200:
            raise SystemExit(f"loadgen: campaign {campaign_id}: HTTP {response.status}")
        return parse_campaign(await response.json())


async def build_channels(
    http: aiohttp.ClientSession,
    names: tuple[str, ...],
    campaign: Campaign,
    ingest: str,
    settings: Settings,
    run_id: str,
) -> dict[str, Channel]:
    made: dict[str, Channel] = {}
    for name in names:
        if name == "web":
            _need(settings.web_jwt_secret, "VOTESTREAM_WEB_JWT_SECRET")
            made[name] = WebChannel(ingest, campaign.id, settings.web_jwt_secret)
        elif name == "wechat":
            _need(settings.wechat_token, "VOTESTREAM_WECHAT_TOKEN")
            cipher = None
            if settings.wechat_aes_key:
                cipher = WeChatCipher(settings.wechat_aes_key, settings.wechat_appid)
            numbers = {c.id: n for n, c in enumerate(campaign.candidates, start=1)}
            made[name] = WeChatChannel(ingest, campaign.id, settings.wechat_token, cipher, numbers)
        else:
            _need(settings.admin_token, "VOTESTREAM_ADMIN_TOKEN")
            kiosk = KioskChannel(ingest, campaign.id, settings.admin_token)
            await kiosk.register(http, run_id)
            made[name] = kiosk
    return made


def _need(value: str, variable: str) -> None:
    if not value:
        raise SystemExit(f"loadgen: {variable} is not set (nor in the data dir's secrets)")
