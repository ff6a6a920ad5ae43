"""After traffic, no log line of a running system holds a secret, a phone number, a voter's
account id or a voter token; the services' lines are JSON and carry the request id."""

from __future__ import annotations

import json
import uuid

import httpx

from services.runtime.settings import read_secrets
from tests.e2e.web_traffic import drive_web_traffic
from tests.support.system import System
from tests.support.waiting import eventually

SERVICES = ("ingest", "tally", "publish")


def log_lines(system: System) -> list[tuple[str, str]]:
    """(file, line) of every log the system wrote, and of what `votestream up` printed."""
    lines = [("votestream up", line) for line in system.output]
    for path in sorted((system.data_dir / "logs").glob("*.log")):
        text = path.read_text(encoding="utf-8", errors="replace")
        lines += [(path.name, line) for line in text.splitlines()]
    return lines


def leaks(lines: list[tuple[str, str]], forbidden: dict[str, str]) -> list[str]:
    return [
        f"{name} in {file}: {line[:200]}"
        for file, line in lines
        for name, value in forbidden.items()
        if value in line
    ]


def test_logs_hold_no_secret_phone_account_or_token(system: System) -> None:
    traffic = drive_web_traffic(system, system.new_campaign(), voters=12)
    request_id = f"logcheck-{uuid.uuid4().hex}"
    answer = httpx.post(
        f"{system.ingest}/v1/campaigns/{traffic.campaign_id}/ballots",
        # refused (an accepted ballot's access line is sampled, by default never written);
        # a refusal's line is always written, by the same code as every other
        json={"selections": ["no-such-candidate"]},
        headers={"Authorization": f"Bearer {traffic.tokens[-1]}", "X-Request-Id": request_id},
        timeout=10,
    )
    assert answer.headers["X-Request-Id"] == request_id
    eventually(lambda: _logged(system, request_id), timeout=30, what="the request's access line")
    forbidden = {f"secret {k}": v for k, v in read_secrets(system.data_dir).items() if v}
    assert len(forbidden) >= 5
    for n, phone in enumerate(traffic.phones):
        forbidden[f"phone {n}"] = phone.removeprefix("+")  # with or without the +
        forbidden[f"account {n}"] = traffic.subs[n]
        forbidden[f"token {n}"] = traffic.tokens[n]
    lines = log_lines(system)
    assert not leaks(lines, forbidden), "\n".join(leaks(lines, forbidden)[:20])


def test_the_check_finds_a_planted_identity() -> None:
    planted = "+8613912345678"
    lines = [("ingest.log", f'{{"msg": "oops {planted}"}}')]
    assert leaks(lines, {"phone": planted.removeprefix("+")}) == [
        f'phone in ingest.log: {{"msg": "oops {planted}"}}'
    ]


def test_service_log_lines_are_json(system: System) -> None:
    drive_web_traffic(system, system.new_campaign(), voters=2)
    for service in SERVICES:
        path = system.data_dir / "logs" / f"{service}.log"
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            assert entry["service"] == service, line


def _logged(system: System, request_id: str) -> bool:
    text = (system.data_dir / "logs" / "ingest.log").read_text(encoding="utf-8")
    for line in text.splitlines():
        if request_id in line:
            entry = json.loads(line)
            return bool(entry["route"] == "/v1/campaigns/{campaign_id}/ballots")
    return False
