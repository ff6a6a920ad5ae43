"""Web ballots in over HTTP, through Kafka and the Faust tally, out of the results API."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.system import System
from tests.support.waiting import eventually


def test_mixed_web_traffic_is_counted_exactly_as_an_independent_count(system: System) -> None:
    campaign = system.new_campaign()
    cid = campaign["id"]
    candidates = [c["id"] for c in campaign["candidates"]]
    rng = random.Random(2021)
    expected: Counter[str] = Counter()
    expected_status: dict[str, tuple[str, str | None]] = {}
    voters = [f"voter-{i}" for i in range(150)]
    jobs = []
    for voter in voters:
        choice = rng.sample(candidates, rng.randint(1, 10))
        ballot_id = str(uuid.uuid4())
        jobs.append((voter, choice, ballot_id))
        jobs.append((voter, choice, ballot_id))  # a retry of the same ballot
        if rng.random() < 0.3:  # a second ballot from the same voter: over the limit
            second = str(uuid.uuid4())
            jobs.append((voter, rng.sample(candidates, 2), second))
            expected_status[second] = ("rejected", "limit_exceeded")
        expected.update(choice)
        expected_status[ballot_id] = ("counted", None)
    invalid = [(f"bad-{i}", ["c01", "c01"], str(uuid.uuid4())) for i in range(20)]
    invalid += [(f"bad2-{i}", ["zz"], str(uuid.uuid4())) for i in range(20)]
    invalid += [(f"bad3-{i}", candidates[:11], str(uuid.uuid4())) for i in range(20)]

    def cast(job: tuple[str, list[str], str]) -> int:
        voter, selections, ballot_id = job
        headers = {"Authorization": f"Bearer {system.voter_token(voter)}"}
        body = {"selections": selections, "ballot_id": ballot_id}
        response = httpx.post(
            f"{system.ingest}/v1/campaigns/{cid}/ballots", json=body, headers=headers, timeout=10
        )
        return response.status_code

    # the first ballot of each voter must precede its over-limit second one: cast in order
    # per voter, voters in parallel
    by_voter: dict[str, list[tuple[str, list[str], str]]] = {}
    for job in jobs:
        by_voter.setdefault(job[0], []).append(job)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda js: [cast(j) for j in js], by_voter.values()))
        bad_codes = list(pool.map(cast, invalid))
    assert all(code == 202 for group in codes for code in group)
    assert bad_codes == [422] * len(invalid)

    def published() -> dict[str, int] | None:
        response = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5)
        if response.status_code != 200:
            return None
        snapshot = response.json()
        if snapshot["ballots_counted"] != len(voters):
            return None
        return {c["id"]: c["votes"] for c in snapshot["candidates"]}

    totals = eventually(published, timeout=60, what="all ballots published")
    assert totals == {c: expected.get(c, 0) for c in candidates}
    snapshot = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results").json()
    assert snapshot["ballots_rejected"] == {
        "limit_exceeded": sum(1 for s in expected_status.values() if s[1] == "limit_exceeded")
    }
    for ballot_id, (status, reason) in expected_status.items():
        fate = httpx.get(f"{system.ingest}/v1/ballots/{ballot_id}").json()
        assert (fate["status"], fate["reason"]) == (status, reason), ballot_id
    for _, _, ballot_id in invalid:
        assert httpx.get(f"{system.ingest}/v1/ballots/{ballot_id}").status_code == 404
