"""Velocity limits on the running system: one device or one network past its campaign's
limit gets 429 with Retry-After, counted by reason; a campaign without limits is untouched."""

from __future__ import annotations

import re

import httpx

from tests.e2e.stuffing import Crowd
from tests.support.system import System

VELOCITY = {"device": {"per_minute": 1, "burst": 3}, "ip_prefix": {"per_minute": 1, "burst": 5}}


def refusals(system: System, reason: str) -> float:
    text = httpx.get(f"{system.ingest}/metrics", timeout=5).text
    pattern = rf'votestream_ingest_velocity_refusals_total{{channel="web",reason="{reason}"}} (\S+)'
    match = re.search(pattern, text)
    assert match, f"no {reason} refusal series"
    return float(match.group(1))


def test_one_device_past_its_limit_is_refused_with_retry_after(system: System) -> None:
    crowd = Crowd(system, system.new_campaign(defenses={"rules": [], "velocity": VELOCITY})["id"])
    before = refusals(system, "device")
    phone = {"X-Device-Fingerprint": "emulator-farm-7"}
    answers = [crowd.vote("farm", f"127.70.{n}.1", ["c01"], headers=phone) for n in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "velocity_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    other = crowd.vote("honest", "127.70.9.1", ["c01"], headers={"X-Device-Fingerprint": "mine"})
    assert other.status_code == 202
    assert refusals(system, "device") == before + 1


def test_one_network_past_its_limit_is_refused(system: System) -> None:
    crowd = Crowd(system, system.new_campaign(defenses={"rules": [], "velocity": VELOCITY})["id"])
    before = refusals(system, "ip_prefix")
    codes = [crowd.vote("farm", f"127.71.1.{n + 1}", ["c02"]).status_code for n in range(6)]
    assert codes == [202] * 5 + [429]
    assert crowd.vote("honest", "127.71.2.1", ["c02"]).status_code == 202
    assert refusals(system, "ip_prefix") == before + 1


def test_a_campaign_without_defenses_takes_every_ballot_from_one_device(system: System) -> None:
    crowd = Crowd(system, system.new_campaign()["id"])
    phone = {"X-Device-Fingerprint": "shared-tablet"}
    codes = [
        crowd.vote("honest", "127.72.1.1", ["c03"], headers=phone).status_code for _ in range(8)
    ]
    assert codes == [202] * 8
