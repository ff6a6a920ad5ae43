"""Web ballots of every kind the dashboards show: accepted, over the limit (rejected by the
tally), invalid (422 at ingest) and unauthorised (401)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.system import System


@dataclass
class Traffic:
    campaign_id: str
    statuses: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    subs: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.statuses.count(202)


def drive_web_traffic(system: System, campaign: dict[str, Any], voters: int = 40) -> Traffic:
    """Every voter signs in with a verified phone; every fourth votes twice (over the limit)."""
    traffic = Traffic(campaign["id"])
    candidates = [c["id"] for c in campaign["candidates"]]
    run = uuid.uuid4().int
    plans = []
    for n in range(voters):
        phone, sub = f"+86139{(run + n) % 10**8:08d}", f"logcheck-{uuid.uuid4().hex}"
        token = system.voter_token(sub, phone=phone)
        traffic.tokens.append(token)
        traffic.phones.append(phone)
        traffic.subs.append(sub)
        ballots = [candidates[n % 5 : n % 5 + 3]] + ([candidates[:2]] * (n % 4 == 0))
        plans.append([(token, selections) for selections in ballots])
    plans += [[(traffic.tokens[0], ["c01", "c01"])], [(traffic.tokens[1], ["zz"])]]
    plans += [[("not-a-token", ["c01"])]]
    with ThreadPoolExecutor(8) as pool:
        for statuses in pool.map(lambda plan: [_cast(system, traffic, *b) for b in plan], plans):
            traffic.statuses += statuses
    return traffic


def _cast(system: System, traffic: Traffic, token: str, selections: list[str]) -> int:
    response = httpx.post(
        f"{system.ingest}/v1/campaigns/{traffic.campaign_id}/ballots",
        json={"selections": selections},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return response.status_code
