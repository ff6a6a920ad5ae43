"""The correlation middleware: X-Request-Id in or made up, echoed, on every log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.domain.errors import MalformedError
from services.runtime.correlation import HEADER, SLOW_SECONDS, correlate, sample_access
from services.runtime.http import errors_as_json
from services.runtime.logs import JsonFormatter


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[list[dict[str, object]]]:
    """Captures the loggers under test directly, whatever other tests did to the root logger
    (a Faust worker's logging set-up, run in-process by other tests, reconfigures it)."""
    handler = Lines()
    saved = []
    for name in ("votestream.access", "handler"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.disabled, logger.level, logger.propagate))
        logger.disabled, logger.propagate = False, False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    yield handler.lines
    for logger, disabled, level, propagate in saved:
        logger.removeHandler(handler)
        logger.disabled, logger.propagate = disabled, propagate
        logger.setLevel(level)


async def hello(request: web.Request) -> web.Response:
    logging.getLogger("handler").info("handling")
    return web.json_response({"ok": True})


async def broken(request: web.Request) -> web.Response:
    raise MalformedError("no", code="malformed_json")


async def client() -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=[correlate, errors_as_json])
    app.router.add_get("/v1/things/{thing_id}", hello)
    app.router.add_get("/broken", broken)
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    return test_client


async def test_an_offered_id_is_echoed_and_on_every_log_line(
    lines: list[dict[str, object]],
) -> None:
    http = await client()
    try:
        response = await http.get(
            "/v1/things/42?code=secret-code", headers={HEADER: "req-12345678"}
        )
    finally:
        await http.close()
    assert response.headers[HEADER] == "req-12345678"
    logged = [line for line in lines if line["logger"] in ("handler", "votestream.access")]
    assert [line["request_id"] for line in logged] == ["req-12345678"] * 2
    access = logged[-1]
    assert (access["route"], access["status"]) == ("/v1/things/{thing_id}", 200)
    # (aiohttp's own access log, off in the services, shows the raw request line)
    ours = str([line for line in lines if line["logger"] != "aiohttp.access"])
    assert "secret-code" not in ours and "/42" not in ours


async def test_a_missing_or_odd_id_is_replaced_by_a_fresh_one(
    lines: list[dict[str, object]],
) -> None:
    http = await client()
    try:
        plain = await http.get("/v1/things/1")
        odd = await http.get("/v1/things/1", headers={HEADER: "+86 138 0013 8000"})
        again = await http.get("/v1/things/1")
    finally:
        await http.close()
    ids = {plain.headers[HEADER], odd.headers[HEADER], again.headers[HEADER]}
    assert len(ids) == 3 and all(len(i) == 32 for i in ids)
    assert "138 0013" not in str(lines)


async def test_error_answers_carry_the_id_too(lines: list[dict[str, object]]) -> None:
    http = await client()
    try:
        refused = await http.get("/broken", headers={HEADER: "req-abcdefgh"})
        missing = await http.get("/nowhere", headers={HEADER: "req-ijklmnop"})
    finally:
        await http.close()
    assert (refused.status, refused.headers[HEADER]) == (400, "req-abcdefgh")
    assert (missing.status, missing.headers[HEADER]) == (404, "req-ijklmnop")
    statuses = [(line["route"], line["status"]) for line in lines if "route" in line]
    assert statuses == [("/broken", 400), ("unmatched", 404)]


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(SLOW_SECONDS + 0.05)
    return web.json_response({"ok": True})


async def sampled_client(share: float) -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=[correlate, errors_as_json])
    app.router.add_get("/v1/things/{thing_id}", hello)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    for route in ("/v1/things/{thing_id}", "/broken", "/slow"):
        sample_access(app, route, share)
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    return test_client


async def test_a_sampled_route_logs_its_errors_and_slow_answers_but_no_quick_success(
    lines: list[dict[str, object]],
) -> None:
    http = await sampled_client(0.0)
    try:
        for n in range(20):
            assert (await http.get(f"/v1/things/{n}")).status == 200
        assert (await http.get("/broken")).status == 400
        assert (await http.get("/slow")).status == 200
    finally:
        await http.close()
    statuses = [(line["route"], line["status"]) for line in lines if "route" in line]
    assert statuses == [("/broken", 400), ("/slow", 200)]


async def test_a_route_sampled_at_one_logs_every_answer(lines: list[dict[str, object]]) -> None:
    http = await sampled_client(1.0)
    try:
        for n in range(5):
            assert (await http.get(f"/v1/things/{n}")).status == 200
    finally:
        await http.close()
    statuses = [(line["route"], line["status"]) for line in lines if "route" in line]
    assert statuses == [("/v1/things/{thing_id}", 200)] * 5
