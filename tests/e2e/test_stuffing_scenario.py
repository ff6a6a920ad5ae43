"""Honest traffic mixed with a click farm, a burst for one candidate and fresh accounts, on
the running system: each kind is detected within a bound, honest ballots are not held, the
final waits for the organiser, and after the decisions the totals equal an independent count.

Stated bounds: each kind detected within DETECTED_WITHIN seconds of its last ballot's 202;
at most HONEST_HELD_RATE of honest ballots held (the design expects none).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.runtime.kafka import DETECTIONS
from tests.e2e.stuffing import Crowd, results_votes, tally
from tests.support.system import System
from tests.support.waiting import eventually

DETECTED_WITHIN = 15.0
HONEST_HELD_RATE = 0.01
FARM, BURST, FRESH = 40, 100, 20
DEFENSES = {
    "rules": [
        {"kind": "identical_selections", "window": "60s", "min_ballots": 5, "action": "hold"},
        {
            "kind": "candidate_burst",
            "window": "5s",
            "baseline_windows": 6,
            "factor": 3,
            "min_votes": 25,
            "action": "count",
        },
        {"kind": "fresh_voter", "min_age": "10s", "action": "hold"},
    ],
}


def admin(system: System, method: str, cid: str, path: str, **body: Any) -> dict[str, Any]:
    response = httpx.request(
        method,
        f"{system.ingest}/v1/admin/campaigns/{cid}/{path}",
        json=body or None,
        headers=system.admin_headers(),
        timeout=15,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def detected_within(system: System, cid: str, rule: str, sent_at: float) -> float:
    def found() -> bool:
        return any(
            d["rule"] == rule
            for d in admin(system, "GET", cid, "detections?limit=1000")["detections"]
        )

    eventually(found, timeout=DETECTED_WITHIN, what=f"a {rule} detection")
    return time.monotonic() - sent_at


def latest(system: System, cid: str) -> dict[str, Any]:
    response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5)
    return dict(response.json()) if response.status_code == 200 else {}


def test_three_kinds_of_stuffing_are_detected_held_decided_and_the_final_adds_up(
    system: System,
) -> None:
    cid = system.new_campaign(defenses=DEFENSES, kiosk_grace="1s")["id"]
    crowd = Crowd(system, cid)
    crowd.honest(100, per_second=10)  # the candidates' baseline
    background = threading.Thread(target=crowd.honest, args=(60, 10))
    background.start()
    latency = {}
    crowd.farm(FARM, ["c05", "c06", "c07"])
    latency["identical_selections"] = detected_within(
        system, cid, "identical_selections", time.monotonic()
    )
    crowd.burst(BURST, "c20")
    latency["candidate_burst"] = detected_within(system, cid, "candidate_burst", time.monotonic())
    crowd.fresh(FRESH)
    latency["fresh_voter"] = detected_within(system, cid, "fresh_voter", time.monotonic())
    background.join()
    print("detected after (s):", {k: round(v, 2) for k, v in latency.items()})

    total = len(crowd.cast)
    snapshot = eventually(
        lambda: (
            (s := latest(system, cid))
            and s["ballots_counted"] + sum(s.get("ballots_held", {}).values()) == total
            and s
        ),
        timeout=60,
        what="every ballot counted or held",
    )
    held = admin(system, "GET", cid, "held?limit=1000")["held"]
    held_ids = {h["ballot_id"]: h["rule"] for h in held}
    kinds = {c.ballot_id: c.kind for c in crowd.cast}
    held_farm = [b for b, rule in held_ids.items() if kinds[b] == "farm"]
    assert {kinds[b] for b in held_ids} <= {"farm", "fresh"}
    assert all(held_ids[c.ballot_id] == "fresh_voter" for c in crowd.of("fresh"))
    assert all(held_ids[b] == "identical_selections" for b in held_farm)
    assert FARM - 4 >= len(held_farm) >= FARM * 0.8, len(held_farm)
    honest_held = sum(1 for c in crowd.of("honest") if c.ballot_id in held_ids)
    assert honest_held / len(crowd.of("honest")) <= HONEST_HELD_RATE
    assert snapshot["ballots_held"] == {
        "identical_selections": len(held_farm),
        "fresh_voter": FRESH,
    }
    bursts = [
        d
        for d in admin(system, "GET", cid, "detections?limit=1000")["detections"]
        if d["rule"] == "candidate_burst"
    ]
    assert "c20" in {d["subject"] for d in bursts}
    assert all(set(d["evidence"]) >= {"votes_in_window", "baseline_per_window"} for d in bursts)

    # Closed, and the tally past the cut-off everywhere: only the held ballots stop the seal.
    admin(system, "POST", cid, "close")
    asyncio.run(cutoff_passed(system, cid))
    released = held_farm[:5]
    answer = admin(
        system,
        "POST",
        cid,
        "held/release",
        ballot_ids=released,
        actor="organiser",
        reason="five farm voters confirmed in person",
    )
    assert sorted(answer["ballot_ids"]) == sorted(released)
    again = admin(
        system,
        "POST",
        cid,
        "held/release",
        ballot_ids=released,
        actor="organiser",
        reason="pressed twice",
    )
    assert again["ballot_ids"] == []
    counted_before = snapshot["ballots_counted"]
    after_release = eventually(
        lambda: (s := latest(system, cid)) and s["ballots_counted"] == counted_before + 5 and s,
        timeout=30,
        what="the release in the next snapshot",
    )
    assert after_release["final"] is False
    assert after_release["ballots_held"]["identical_selections"] == len(held_farm) - 5
    assert (
        httpx.get(f"{system.publish}/v1/campaigns/{cid}/results/final", timeout=5).status_code
        == 404
    )

    rejected = admin(
        system,
        "POST",
        cid,
        "held/reject",
        rule="identical_selections",
        actor="organiser",
        reason="click farm: one network, identical ballots",
    )
    assert sorted(rejected["ballot_ids"]) == sorted(held_farm[5:])
    admin(
        system,
        "POST",
        cid,
        "held/release",
        rule="fresh_voter",
        actor="organiser",
        reason="new accounts verified by SMS",
    )

    final = eventually(lambda: final_results(system, cid), timeout=60, what="the sealed final")
    assert final is not None
    kept = [c for c in crowd.cast if c.ballot_id not in set(rejected["ballot_ids"])]
    assert results_votes(final) == tally(kept)
    assert final["ballots_counted"] == len(kept) == total - (len(held_farm) - 5)
    assert final["ballots_rejected"] == {"organiser_rejected": len(held_farm) - 5}
    assert final["ballots_held"] == {"identical_selections": 0, "fresh_voter": 0}
    audit = admin(system, "GET", cid, "decisions?limit=1000")["decisions"]
    assert len(audit) == len(held_farm) + FRESH
    assert {a["actor"] for a in audit} == {"organiser"}
    assert asyncio.run(announced_rules(system, cid)) >= set(latency)


def final_results(system: System, cid: str) -> dict[str, Any] | None:
    response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results/final", timeout=5)
    return dict(response.json()) if response.status_code == 200 else None


async def cutoff_passed(system: System, cid: str) -> None:
    conn = await asyncpg.connect(
        f"postgresql://votestream@127.0.0.1:{system.ports['PG']}/votestream"
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if await conn.fetchval(
                "SELECT c.partitions <= (SELECT count(*) FROM cutoff_marks m"
                " WHERE m.campaign_id = c.campaign_id) FROM cutoffs c WHERE c.campaign_id = $1",
                cid,
            ):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the tally did not pass the cut-off markers")
    finally:
        await conn.close()


async def announced_rules(system: System, cid: str) -> set[str]:
    """The rules of this campaign's detections seen on topic `detections`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{system.ports['KAFKA']}")
    await consumer.start()
    try:
        partition = TopicPartition(DETECTIONS, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        rules: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(rules) < 3:
            batches = await consumer.getmany(partition, timeout_ms=1000, max_records=10_000)
            for message in batches.get(partition, []):
                event = orjson.loads(message.value or b"{}")
                if event.get("campaign_id") == cid:
                    assert set(event) >= {"rule", "evidence", "window_start", "ballots"}
                    rules.add(event["rule"])
        return rules
    finally:
        await consumer.stop()
