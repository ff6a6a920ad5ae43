"""Operator commands: campaigns in and out, recount, verify."""

from __future__ import annotations

import argparse
import base64
import os
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.domain.snapshot import verify as verify_snapshot
from services.runtime.campaigns import CampaignStore, read_campaign_file
from services.runtime.db import connect_pool
from services.runtime.settings import Settings


def _say(line: str) -> None:
    print(line)


async def campaign(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    if args.action == "load":
        loaded = read_campaign_file(args.file, open_now=args.open_now, duration=args.duration)
    pool = await connect_pool(settings.dsn, max_size=2)
    try:
        store = CampaignStore(pool)
        if args.action == "load":
            await store.put(loaded)
            window = f"{loaded.opens_at.isoformat()} .. {loaded.closes_at.isoformat()}"
            _say(f"loaded {loaded.id}: {window}")
            return 0
        for c in await store.all():
            _say(f"{c.id}\t{c.opens_at.isoformat()}\t{c.closes_at.isoformat()}\t{c.title}")
        return 0
    finally:
        await pool.close()


async def recount(campaign_id: str) -> int:
    """Recounts from the ballot records alone and compares with the tallies and the snapshot."""
    settings = Settings.from_env(os.environ)
    pool = await connect_pool(settings.dsn, max_size=2)
    try:
        records = await pool.fetch(
            "SELECT candidate_id, channel, date_trunc('minute', received_at) AS w, count(*) AS n"
            " FROM ballots CROSS JOIN LATERAL unnest(selections) AS candidate_id"
            " WHERE campaign_id = $1 AND status = 'counted' GROUP BY 1, 2, 3",
            campaign_id,
        )
        tallied = await pool.fetch(
            "SELECT candidate_id, channel, window_start AS w, sum(votes) AS n FROM tallies"
            " WHERE campaign_id = $1 GROUP BY 1, 2, 3",
            campaign_id,
        )
        latest = await pool.fetchrow(
            "SELECT body FROM snapshots WHERE campaign_id = $1 ORDER BY seq DESC LIMIT 1",
            campaign_id,
        )
    finally:
        await pool.close()
    recounted = {(r["candidate_id"], r["channel"], r["w"]): r["n"] for r in records}
    windows = {(r["candidate_id"], r["channel"], r["w"]): r["n"] for r in tallied}
    differences = _window_differences(recounted, windows)
    totals: Counter[tuple[str, str]] = Counter()
    for (cid, ch, _), n in recounted.items():
        totals[(cid, ch)] += n
    snapshot = orjson.loads(latest["body"]) if latest else None
    differences += _snapshot_differences(totals, snapshot)
    if differences:
        _say(f"{'where':<44}{'recount':>10}{'published':>11}")
        for where, mine, theirs in differences:
            _say(f"{where:<44}{mine:>10}{theirs:>11}")
        _say(f"recount of {campaign_id}: {len(differences)} difference(s)")
        return 1
    seq = snapshot["seq"] if snapshot else "-"
    _say(
        f"recount of {campaign_id}: {sum(totals.values())} votes in {len(recounted)} windows "
        f"agree with the tallies and snapshot #{seq}"
    )
    return 0


def _window_differences(
    recounted: dict[tuple[str, str, Any], int], windows: dict[tuple[str, str, Any], int]
) -> list[tuple[str, int, int]]:
    out = []
    for key in sorted(set(recounted) | set(windows)):
        mine, theirs = recounted.get(key, 0), windows.get(key, 0)
        if mine != theirs:
            cid, ch, w = key
            out.append((f"window {w:%Y-%m-%d %H:%M} {cid}/{ch}", mine, theirs))
    return out


def _snapshot_differences(
    totals: Counter[tuple[str, str]], snapshot: dict[str, Any] | None
) -> list[tuple[str, int, int]]:
    if snapshot is None:
        return [("no snapshot published", sum(totals.values()), 0)] if totals else []
    out = []
    for candidate in snapshot["candidates"]:
        for ch, theirs in candidate["by_channel"].items():
            mine = totals.get((candidate["id"], ch), 0)
            if mine != theirs:
                out.append((f"snapshot #{snapshot['seq']} {candidate['id']}/{ch}", mine, theirs))
    return out


def verify(path: Path, public_key_b64: str | None) -> int:
    """Checks a snapshot file: 0 intact and authentic, 1 it is not, 2 it could not be checked.

    `public_key_b64` is the base64 key, or a file holding it (or the public-key JSON);
    without it the key is asked from the publish API of these settings.
    """
    try:
        snapshot = _read_snapshot(path)
        key = _public_key(public_key_b64)
    except (OSError, ValueError, KeyError) as exc:
        print(f"votestream verify: {exc}", file=sys.stderr)
        return 2
    problems = verify_snapshot(snapshot, key)
    if problems:
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        return 1
    kind = "final" if snapshot.get("final") else "snapshot"
    signed = ", signature valid" if snapshot.get("signature") else ", unsigned"
    where = f"#{snapshot['seq']} of {snapshot['campaign_id']}"
    _say(f"OK {kind} {where}: hash {snapshot['hash']}{signed}")
    return 0


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
