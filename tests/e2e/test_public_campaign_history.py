"""Anyone can match a snapshot to the campaign definition it was counted under: the public
history gives each definition in force, whose hash the snapshot names, with no organiser's
name and no defence thresholds."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import rfc8785

from tests.support.system import System
from tests.support.waiting import eventually


def test_each_snapshots_campaign_hash_is_a_public_history_rows_definition(system: System) -> None:
    defenses = {"rules": [{"kind": "fresh_voter", "action": "hold"}]}
    campaign = system.new_campaign(defenses=defenses)
    cid = campaign["id"]
    first = results(system, cid, lambda r: r is not None)
    reworded = {**campaign, "title": campaign["title"] + "（更正）", "defenses": defenses}
    reworded.pop("status", None)
    httpx.put(
        f"{system.ingest}/v1/admin/campaigns/{cid}",
        json=reworded,
        headers=system.admin_headers(),
        timeout=10,
    ).raise_for_status()
    later = results(system, cid, lambda r: r["campaign_hash"] != first["campaign_hash"])

    for base in (system.ingest, system.publish):
        history = httpx.get(f"{base}/v1/campaigns/{cid}/history", timeout=5).json()["history"]
        assert len(history) == 2 and all(row["changes"] for row in history)
        for row in history:
            assert "actor" not in row and "defenses" not in row["definition"]
            digest = hashlib.sha256(rfc8785.dumps(row["definition"])).hexdigest()
            assert digest == row["definition_hash"]
        hashes = [row["definition_hash"] for row in history]
        assert hashes == [first["campaign_hash"], later["campaign_hash"]]
        assert history[1]["prev_hash"] == history[0]["row_hash"]


def results(system: System, cid: str, ready: Any) -> dict[str, Any]:
    def latest() -> dict[str, Any] | None:
        response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5)
        found: dict[str, Any] | None = response.json() if response.status_code == 200 else None
        return found if found is not None and ready(found) else None

    return eventually(latest, timeout=30, what="a snapshot")
