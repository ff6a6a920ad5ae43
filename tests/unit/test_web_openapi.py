"""The OpenAPI document (schemas/openapi.ingest.json) describes exactly the ingest app's routes."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import schemathesis

from tests.unit.web_fakes import web_client

DOC: dict[str, Any] = json.loads(
    files("schemas").joinpath("openapi.ingest.json").read_text("utf-8")
)
SPEC_WEB_ERRORS = {"400", "401", "404", "409", "413", "422", "429", "503"}


def documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in DOC["paths"].items() for method in item}


async def test_every_route_of_the_app_is_documented_and_nothing_else(tmp_path: Path) -> None:
    async with web_client(tmp_path) as client:
        served = {
            (route.method, route.resource.canonical)
            for route in client.app.router.routes()
            if route.method != "HEAD"
            and route.resource is not None
            # the organiser console is HTML for browsers (docs/ORGANISERS.md), not an API
            and not route.resource.canonical.startswith("/admin")
        }
    assert served - documented() == set(), "served but not documented"
    assert documented() - served == set(), "documented but not served"


def test_the_document_loads_as_openapi_3_1() -> None:
    schema = schemathesis.openapi.from_dict(DOC)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert DOC["openapi"].startswith("3.1")
    assert len(operations) == len(documented())


def test_the_ballot_route_documents_every_error_of_spec_section_5() -> None:
    responses = DOC["paths"]["/v1/campaigns/{campaign_id}/ballots"]["post"]["responses"]
    assert set(responses) == {"202"} | SPEC_WEB_ERRORS
    for status in ("429", "503"):
        name = responses[status]["$ref"].rsplit("/", 1)[1]
        assert "Retry-After" in DOC["components"]["responses"][name]["headers"]


def test_every_operation_names_its_responses_and_an_operation_id() -> None:
    ids = [op["operationId"] for item in DOC["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(documented())
    for item in DOC["paths"].values():
        for operation in item.values():
            assert operation["responses"], operation["operationId"]
