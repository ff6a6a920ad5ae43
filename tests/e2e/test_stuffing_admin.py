"""The defence admin API refuses what it cannot act on, with a clear JSON error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.system import System


@pytest.fixture(scope="module")
def campaign_id(system: System) -> str:
    defenses = {"rules": [{"kind": "fresh_voter", "action": "hold"}]}
    return str(system.new_campaign(defenses=defenses)["id"])


def call(system: System, path: str, body: Any = None, admin: bool = True) -> httpx.Response:
    headers = system.admin_headers() if admin else {"Authorization": "Bearer guess"}
    method = "POST" if body is not None else "GET"
    url = f"{system.ingest}/v1/admin/campaigns/{path}"
    return httpx.request(method, url, json=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "body",
    [
        {"ballot_ids": [], "actor": "ops", "reason": "r"},  # neither ids nor rule
        {
            "rule": "fresh_voter",
            "ballot_ids": ["0f8fad5b-d9cb-469f-a165-70867728950e"],
            "actor": "ops",
            "reason": "r",
        },  # both
        {"rule": "fresh_voter", "reason": "r"},  # no actor
        {"rule": "fresh_voter", "actor": "ops", "reason": " "},  # blank reason
        {"ballot_ids": ["not-a-uuid"], "actor": "ops", "reason": "r"},
        {"rule": 7, "actor": "ops", "reason": "r"},
    ],
)
def test_a_bad_decision_is_refused_and_changes_nothing(
    system: System, campaign_id: str, body: dict[str, Any]
) -> None:
    response = call(system, f"{campaign_id}/held/release", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_decision"
    assert call(system, f"{campaign_id}/decisions").json()["decisions"] == []


def test_the_api_wants_the_admin_token_and_a_known_campaign(
    system: System, campaign_id: str
) -> None:
    assert call(system, f"{campaign_id}/held", admin=False).status_code == 401
    unknown = call(system, "no-such-campaign/detections")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_campaign")
    assert call(system, f"{campaign_id}/detections?limit=x").status_code == 400


def test_deciding_nothing_held_changes_nothing(system: System, campaign_id: str) -> None:
    body = {"rule": "fresh_voter", "actor": "ops", "reason": "nothing there"}
    answer = call(system, f"{campaign_id}/held/reject", body)
    assert answer.status_code == 200 and answer.json()["ballot_ids"] == []
