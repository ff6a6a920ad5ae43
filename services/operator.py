"""Operator commands: campaigns in and out, recount, verify."""

from __future__ import annotations

import argparse
import base64
import getpass
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.domain.campaign import Campaign, parse_campaign
from services.domain.errors import CampaignInvalidError
from services.domain.snapshot import verify as verify_snapshot
from services.runtime.campaigns import CampaignStore, read_campaign_file
from services.runtime.db import connect_pool
from services.runtime.settings import Settings
from services.tally import recount as tally_recount


def _say(line: str) -> None:
    print(line)


def _operator_name() -> str:
    """Who runs the command, for the campaign history: the login name, or the uid where the
    user has none (a container's runAsUser has no passwd entry and no $USER)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # KeyError up to Python 3.12, OSError from 3.13
        return f"uid {os.getuid()}"


async def campaign(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    if args.action == "load":
        loaded = read_campaign_file(args.file, open_now=args.open_now, duration=args.duration)
    pool = await connect_pool(settings.dsn, max_size=2)
    try:
        store = CampaignStore(pool)
        if args.action == "load":
            # refused with campaign_locked when the rules of counted ballots would change
            applied = await store.put(loaded, actor=f"cli:{_operator_name()}")
            window = f"{loaded.opens_at.isoformat()} .. {loaded.closes_at.isoformat()}"
            what = ", ".join(applied.changes) or "unchanged"
            _say(f"loaded {loaded.id}: {window} ({what})")
            return 0
        for c in await store.all():
            _say(f"{c.id}\t{c.opens_at.isoformat()}\t{c.closes_at.isoformat()}\t{c.title}")
        return 0
    finally:
        await pool.close()


async def recount(campaign_id: str) -> int:
    """Recounts from the ballot records alone; compares with the tallies and the snapshot."""
    settings = Settings.from_env(os.environ)
    pool = await connect_pool(settings.dsn, max_size=2)
    try:
        found = await tally_recount.recount(pool, campaign_id)
    finally:
        await pool.close()
    differences = tally_recount.differences(found)
    if differences:
        for line in tally_recount.table(differences):
            _say(line)
        _say(f"recount of {campaign_id}: {len(differences)} difference(s)")
        return 1
    seq = found.snapshot["seq"] if found.snapshot else "-"
    ballots = sum(found.outcomes.values())
    _say(
        f"recount of {campaign_id}: {ballots} ballots, {found.votes} votes in"
        f" {len(found.windows)} windows agree with the tallies and snapshot #{seq}"
    )
    return 0


def verify(path: Path, public_key_b64: str | None, campaign_source: str | None = None) -> int:
    """Checks a snapshot file: 0 intact and authentic, 1 it is not, 2 it could not be checked.

    `public_key_b64` is the base64 key, or a file holding it (or the public-key JSON);
    without it the key is asked from the publish API of these settings. `campaign_source`
    (a campaign file, a URL of its definition, or `api` for this system's publish API) is
    the definition the snapshot's `campaign_hash` must match.
    """
    try:
        snapshot = _read_snapshot(path)
        key = _public_key(public_key_b64)
        campaign = _campaign(campaign_source, str(snapshot["campaign_id"]))
    except (OSError, ValueError, KeyError) as exc:
        print(f"votestream verify: {exc}", file=sys.stderr)
        return 2
    problems = verify_snapshot(snapshot, key, campaign)
    if problems:
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        return 1
    kind = "final" if snapshot.get("final") else "snapshot"
    signed = ", signature valid" if snapshot.get("signature") else ", unsigned"
    where = f"#{snapshot['seq']} of {snapshot['campaign_id']}"
    matched = ", campaign definition matches" if campaign else ""
    _say(f"OK {kind} {where}: hash {snapshot['hash']}{signed}{matched}")
    return 0


def _campaign(source: str | None, campaign_id: str) -> Campaign | None:
    if source is None:
        return None
    if source == "api":
        settings = Settings.from_env(os.environ)
        source = f"http://{settings.host}:{settings.publish_port}/v1/campaigns/{campaign_id}"
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=5) as response:  # noqa: S310 - http(s) only
                return parse_campaign(orjson.loads(response.read()))
        return read_campaign_file(Path(source))
    except CampaignInvalidError as exc:
        raise ValueError(f"the campaign definition given is not valid: {exc}") from exc


def _read_snapshot(path: Path) -> dict[str, Any]:
    try:
        snapshot = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(snapshot, dict):
        raise ValueError(f"{path} holds no snapshot object")  # noqa: TRY004 - bad input, not a bug
    missing = [f for f in ("campaign_id", "seq", "hash") if f not in snapshot]
    if missing:
        raise ValueError(f"{path} is not a snapshot: no {', '.join(missing)}")
    return snapshot


def _public_key(given: str | None) -> Ed25519PublicKey:
    if given is None:
        settings = Settings.from_env(os.environ)
        url = f"http://{settings.host}:{settings.publish_port}/v1/publish/public-key"
        with urllib.request.urlopen(url, timeout=5) as response:
            given = str(orjson.loads(response.read())["public_key"])
    elif Path(given).is_file():
        text = Path(given).read_text("utf-8").strip()
        given = str(orjson.loads(text)["public_key"]) if text.startswith("{") else text
    try:
        raw = base64.b64decode(given, validate=True)
    except ValueError as exc:
        raise ValueError("the public key is not base64") from exc
    if len(raw) != 32:
        raise ValueError("the public key must be the base64 of 32 raw Ed25519 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)
