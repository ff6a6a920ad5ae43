"""The public campaign view: the definition and its status, never the defences' thresholds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.unit.web_fakes import campaign, web_client

DEFENSES = {"rules": [{"kind": "fresh_voter", "min_age": "10s", "action": "hold"}]}


async def test_anyone_reads_the_rules_but_not_the_stuffing_thresholds(tmp_path: Path) -> None:
    defended = campaign("guarded", defenses=DEFENSES)
    assert defended.to_dict()["defenses"]  # the organiser's definition keeps them
    async with web_client(tmp_path, campaigns=[defended]) as client:
        one = await (await client.get("/v1/campaigns/guarded")).json()
        listed = (await (await client.get("/v1/campaigns")).json())["campaigns"]
    assert listed == [one]
    assert "defenses" not in one and one["status"] == "open"
    assert one["ballot"] == defended.to_dict()["ballot"]  # the voting rules stay public
    assert one == defended.public_view(datetime.now(UTC))  # what publish serves as well
