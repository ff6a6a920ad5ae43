"""`votestream defenses ...` against the running system: list, decide, audit."""

from __future__ import annotations

import subprocess
import sys

import httpx
import orjson

from tests.e2e.stuffing import Crowd
from tests.support.system import REPO, System
from tests.support.waiting import eventually

FRESH_HOLD = {"rules": [{"kind": "fresh_voter", "min_age": "30s", "action": "hold"}]}


def votestream(system: System, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "services", "defenses", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=system.env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_the_organiser_lists_and_releases_held_ballots_from_the_shell(system: System) -> None:
    cid = system.new_campaign(defenses=FRESH_HOLD)["id"]
    crowd = Crowd(system, cid)
    for n in range(3):
        assert crowd.vote("fresh", f"127.73.{n}.1", ["c04"], signed_in_ago=0).status_code == 202

    def three_held() -> list[str] | None:
        lines = votestream(system, "held", cid)
        return lines if len(lines) == 3 else None

    held = eventually(three_held, timeout=30, what="three held ballots")
    assert held is not None
    first = orjson.loads(held[0])
    assert set(first) == {
        "ballot_id",
        "rule",
        "detection_id",
        "held_at",
        "channel",
        "selections",
        "cast_at",
    }
    detections = [orjson.loads(line) for line in votestream(system, "detections", cid)]
    assert sum(d["ballots"] for d in detections) == 3
    assert votestream(
        system, "release", cid, first["ballot_id"], "--actor", "ops", "--reason", "known voter"
    ) == ["released 1 held ballot(s)"]
    assert votestream(
        system, "reject", cid, "--rule", "fresh_voter", "--actor", "ops", "--reason", "scripted"
    ) == ["rejected 2 held ballot(s)"]
    audit = [orjson.loads(line) for line in votestream(system, "decisions", cid)]
    assert [(a["decision"], a["reason"]) for a in audit] == [
        ("release", "known voter"),
        ("reject", "scripted"),
        ("reject", "scripted"),
    ]
    fate = httpx.get(f"{system.ingest}/v1/ballots/{first['ballot_id']}", timeout=5).json()
    assert fate["status"] == "counted"
