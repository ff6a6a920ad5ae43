"""Fuzzing the running ingest API from its OpenAPI document (schemathesis).

Every documented operation gets schema-valid and schema-breaking requests. Claims: no 500s,
every answer is documented (status, content type, body schema, headers), and no request that
was refused put a ballot in the count: the tally's ballots for the fuzzed campaign are
exactly those answered 202.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from importlib.resources import files
from typing import Any

import asyncpg
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.system import System
from tests.support.waiting import eventually

DOC: dict[str, Any] = json.loads(
    files("schemas").joinpath("openapi.ingest.json").read_text("utf-8")
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
BALLOTS = "/v1/campaigns/{campaign_id}/ballots"
EXAMPLES_PER_MODE = 25


class SourceAddressAdapter(HTTPAdapter):
    """Connects from its own loopback network, so the fuzz has its own per-IP limits."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Networks:
    """Sessions that connect from their own loopback /24s (127.0.N.1): per-IP limits apart.

    Phone login allows a few requests a minute per network, so each login case comes from a
    fresh network; without that, the fuzz would only ever see 429 there."""

    def __init__(self) -> None:
        self.sessions: dict[int, requests.Session] = {}
        self.next_login = 100

    def session(self, network: int) -> requests.Session:
        if network not in self.sessions:
            http = requests.Session()
            http.mount("http://", SourceAddressAdapter(f"127.0.{network}.1"))
            self.sessions[network] = http
        return self.sessions[network]

    def for_path(self, path: str) -> requests.Session:
        if not path.startswith("/v1/otp"):
            return self.session(9)
        self.next_login = self.next_login + 1 if self.next_login < 250 else 100
        return self.session(self.next_login)

    def close(self) -> None:
        for http in self.sessions.values():
            http.close()


@pytest.fixture
def networks() -> Iterator[Networks]:
    pool = Networks()
    yield pool
    pool.close()


def fuzz(operation: Any, mode: GenerationMode, call: Callable[[Any], None]) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        call(case)

    run()


def test_fuzzing_the_api_finds_no_500_and_publishes_nothing_refused(
    system: System, networks: Networks
) -> None:
    cid = system.new_campaign()["id"]
    accepted: set[str] = set()
    seen: Counter[tuple[str, int]] = Counter()

    def call(case: Any) -> None:
        headers: dict[str, str] = {}
        if case.operation.path == BALLOTS:
            case.path_parameters = {**(case.path_parameters or {}), "campaign_id": cid}
            headers["Authorization"] = f"Bearer {system.voter_token(uuid.uuid4().hex)}"
        session = networks.for_path(case.operation.path)
        response = case.call(base_url=system.ingest, session=session, headers=headers)
        seen[(f"{case.operation.method.upper()} {case.operation.path}", response.status_code)] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        if case.operation.path == BALLOTS and response.status_code == 202:
            accepted.add(response.json()["ballot_id"])

    for result in schemathesis.openapi.from_dict(DOC).get_all_operations():
        operation = result.ok()
        fuzz(operation, GenerationMode.POSITIVE, call)
        if has_input(operation.path, operation.method):  # else nothing to break
            fuzz(operation, GenerationMode.NEGATIVE, call)
    ballot_statuses = {status for (op, status) in seen if op == f"POST {BALLOTS}"}
    assert {400, 422} <= ballot_statuses, f"the fuzz never got past the token: {seen}"
    accepted |= cast_valid_ballots(
        system, cid, networks.session(9)
    )  # the count is not vacuously empty

    def tallied() -> set[str] | None:
        found = asyncio.run(ballot_ids(system, cid))
        return found if len(found) >= len(accepted) else None

    assert eventually(tallied, timeout=60, what="the accepted ballots tallied") == accepted


def has_input(path: str, method: str) -> bool:
    operation = DOC["paths"][path][method.lower()]
    return bool(operation.get("parameters") or operation.get("requestBody"))


def cast_valid_ballots(system: System, cid: str, session: requests.Session) -> set[str]:
    ids = set()
    for selections in (["c01"], ["c02", "c03"], ["c04", "c05", "c06"]):
        token = system.voter_token(uuid.uuid4().hex)
        response = session.post(
            f"{system.ingest}/v1/campaigns/{cid}/ballots",
            json={"selections": selections},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        ids.add(response.json()["ballot_id"])
    return ids


async def ballot_ids(system: System, cid: str) -> set[str]:
    dsn = f"postgresql://votestream@127.0.0.1:{system.ports['PG']}/votestream"
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT ballot_id FROM ballots WHERE campaign_id = $1", cid)
    finally:
        await conn.close()
    return {str(r["ballot_id"]) for r in rows}
