"""Every error of the web ballot route (schemas/openapi.ingest.json), through create_app with
a fake broker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.unit.web_fakes import (
    CountingSink,
    FailingSink,
    bearer,
    campaign,
    voter_token,
    web_client,
)

URL = "/v1/campaigns/demo/ballots"


async def post(
    tmp_path: Path,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    **app: Any,
) -> tuple[int, dict[str, Any], Any]:
    sink = app.pop("sink", CountingSink())
    async with web_client(tmp_path, sink=sink, **app) as client:
        sent = {**bearer(voter_token()), **(headers or {})}
        if raw is not None:
            response = await client.post(URL, data=raw, headers=sent)
        else:
            response = await client.post(URL, json=body, headers=sent)
        answer = await response.json()
        published = len(sink.ballots) if isinstance(sink, CountingSink) else None
        return response.status, {**answer, "_published": published}, response.headers


async def test_a_valid_ballot_is_accepted_and_published_once(tmp_path: Path) -> None:
    status, answer, _ = await post(tmp_path, {"selections": ["c01", "c02"]})
    assert status == 202
    assert answer["status"] == "pending" and len(answer["receipt"]) == 64
    assert answer["_published"] == 1


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (b'{"selections": "c01"}', "bad_selections"),
        (b'{"selections": [1, 2]}', "bad_selections"),
        (b'{"selections": ["c01"], "ballot_id": 7}', "bad_ballot_id"),
        (b'{"selections": ["c01"], "ballot_id": "not-a-uuid"}', "bad_ballot_id"),
    ],
)
async def test_malformed_bodies_answer_400_and_publish_nothing(
    tmp_path: Path, raw: bytes, code: str
) -> None:
    status, answer, _ = await post(tmp_path, None, raw=raw)
    assert (status, answer["error"]["code"], answer["_published"]) == (400, code, 0)


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_token"),
        ("Basic abc", "missing_token"),
        ("Bearer not.a.jwt", "invalid_token"),
        ("Bearer " + voter_token(ttl=-120), "token_expired"),
        ("Bearer " + voter_token(key="another-secret-of-at-least-32-bytes!!"), "invalid_token"),
    ],
)
async def test_missing_or_bad_tokens_answer_401(
    tmp_path: Path, authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {"Authorization": ""}
    status, answer, _ = await post(tmp_path, {"selections": ["c01"]}, headers=headers)
    assert (status, answer["error"]["code"], answer["_published"]) == (401, code, 0)


async def test_an_unknown_campaign_answers_404(tmp_path: Path) -> None:
    async with web_client(tmp_path) as client:
        response = await client.post(
            "/v1/campaigns/nope/ballots",
            json={"selections": ["c01"]},
            headers=bearer(voter_token()),
        )
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "unknown_campaign"


@pytest.mark.parametrize(
    ("opens", "code"),
    [(timedelta(hours=1), "campaign_not_open"), (timedelta(days=-2), "campaign_closed")],
)
async def test_outside_the_window_answers_409(tmp_path: Path, opens: timedelta, code: str) -> None:
    status, answer, _ = await post(
        tmp_path, {"selections": ["c01"]}, campaigns=[campaign(opens=opens)]
    )
    assert (status, answer["error"]["code"], answer["_published"]) == (409, code, 0)


async def test_a_body_over_the_limit_answers_413(tmp_path: Path) -> None:
    body = {"selections": ["c01"], "padding": "x" * 20_000}
    status, answer, _ = await post(tmp_path, body)
    assert (status, answer["error"]["code"], answer["_published"]) == (413, "too_large", 0)


@pytest.mark.parametrize(
    ("selections", "code"),
    [
        ([f"c{i:02d}" for i in range(1, 12)], "too_many_selections"),
        ([], "too_few_selections"),
        (["c01", "zz"], "unknown_candidate"),
        (["c01", "c01"], "duplicate_selection"),
    ],
)
async def test_each_broken_rule_answers_422_with_its_code(
    tmp_path: Path, selections: list[str], code: str
) -> None:
    status, answer, _ = await post(tmp_path, {"selections": selections})
    assert (status, answer["error"]["code"], answer["_published"]) == (422, code, 0)


async def test_a_broker_that_cannot_take_it_answers_503_with_retry_after(tmp_path: Path) -> None:
    status, answer, headers = await post(tmp_path, {"selections": ["c01"]}, sink=FailingSink())
    assert (status, answer["error"]["code"]) == (503, "unavailable")
    assert headers["Retry-After"] == "2"


async def test_errors_are_counted_by_channel_and_outcome(tmp_path: Path) -> None:
    async with web_client(tmp_path, sink=FailingSink()) as client:
        await client.post(URL, json={"selections": ["c01"]}, headers=bearer(voter_token()))
        await client.post(URL, json={"selections": ["zz"]}, headers=bearer(voter_token()))
        metrics = await (await client.get("/metrics")).text()
    assert 'votestream_ingest_requests_total{channel="web",outcome="unavailable"} 1.0' in metrics
    assert (
        'votestream_ingest_rejections_total{channel="web",reason="unknown_candidate"} 1.0'
        in metrics
    )
