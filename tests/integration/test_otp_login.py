"""Phone login against a real PostgreSQL: codes hashed, short-lived, single-use, attempt- and
send-limited across processes, and the token it gives votes as the phone."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.domain.errors import UnavailableError
from services.domain.voters import voter_key
from services.ingest.channels.web import LOGIN
from services.ingest.otp import block_key, phone_key
from services.ingest.sms import OUTBOX
from services.runtime.db import connect_pool
from tests.support.waiting import eventually_async
from tests.unit.web_fakes import IDENTITY_KEY, CountingSink, bearer, web_client

PHONE = "+8613912345678"
LOCAL_PHONE = "139 1234 5678"  # the same phone as a voter types it


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database)
    yield pool
    await pool.close()


def login_app(tmp_path: Path, pool: asyncpg.Pool, **settings: Any) -> Any:
    return web_client(tmp_path, pool=pool, rate_otp_ip_per_minute=600, **settings)


def phones(count: int, block: str = "139") -> list[str]:
    """Distinct numbers in one number block (the first 7 digits of +86 1xx xx...)."""
    return [f"+86{block}00{n:06d}" for n in range(count)]


async def refusal(response: Any) -> tuple[int, str | None, Any]:
    return response.status, response.headers.get("Retry-After"), await response.json()


def sent_codes(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / OUTBOX
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def send(client: Any, phone: str = LOCAL_PHONE) -> Any:
    return await client.post("/v1/otp", json={"phone": phone})


async def verify(client: Any, code: str, phone: str = PHONE) -> Any:
    return await client.post("/v1/otp/verify", json={"phone": phone, "code": code})


async def test_a_code_by_sms_becomes_a_token_that_votes_as_the_phone(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    sink = CountingSink()
    async with login_app(tmp_path, pool, sink=sink) as client:
        response = await send(client)
        assert response.status == 202
        assert await response.json() == {"sent": True, "expires_in": 300}
        [sms] = sent_codes(tmp_path)
        assert sms["to"] == "+86139****5678" and PHONE not in json.dumps(sms)
        assert sms["phone_key"] == phone_key(IDENTITY_KEY.encode(), PHONE)
        login = await verify(client, sms["code"])
        assert login.status == 200
        token = (await login.json())["token"]
        cast = await client.post(
            "/v1/campaigns/demo/ballots", json={"selections": ["c01"]}, headers=bearer(token)
        )
        assert cast.status == 202
    assert sink.ballots[0].voter_key == voter_key(IDENTITY_KEY.encode(), "demo", PHONE)


async def test_the_database_holds_neither_the_phone_nor_the_code(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    async with login_app(tmp_path, pool) as client:
        await send(client)
    [sms] = sent_codes(tmp_path)
    rows = await pool.fetch("SELECT * FROM otp_codes")
    rows += await pool.fetch("SELECT * FROM otp_sends")
    stored = json.dumps([dict(r) for r in rows], default=str)
    assert "12345678" not in stored and sms["code"] not in stored
    assert sms["phone_key"] in stored


async def test_a_code_works_once(tmp_path: Path, pool: asyncpg.Pool) -> None:
    async with login_app(tmp_path, pool) as client:
        await send(client)
        code = sent_codes(tmp_path)[0]["code"]
        assert (await verify(client, code)).status == 200
        again = await verify(client, code)
        assert again.status == 401
        assert (await again.json())["error"]["code"] == "otp_invalid"


async def test_wrong_guesses_use_up_the_code(tmp_path: Path, pool: asyncpg.Pool) -> None:
    async with login_app(tmp_path, pool, otp_attempts=3) as client:
        await send(client)
        code = sent_codes(tmp_path)[0]["code"]
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        codes = []
        for guess in (wrong, wrong, wrong, code):
            response = await verify(client, guess)
            codes.append((response.status, (await response.json())["error"]["code"]))
    # the right code after the last wrong guess is refused too: the guesses used the code up
    assert codes == [(401, "otp_invalid")] * 4
    assert await pool.fetchval("SELECT count(*) FROM otp_codes") == 0


async def test_a_refused_code_never_tells_whether_the_phone_asked_for_one(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    asked, never_asked = "+8613912345670", "+8613912345671"
    async with login_app(tmp_path, pool) as client:
        assert (await send(client, asked)).status == 202
        code = sent_codes(tmp_path)[0]["code"]
        guess = f"{(int(code) + 1) % 10**6:06d}"
        answers = [await verify(client, guess, phone) for phone in (asked, never_asked)]
        refused = [(r.status, r.headers.get("Retry-After"), await r.json()) for r in answers]
    assert refused[0][0] == 401 and refused[0] == refused[1]


async def test_an_expired_code_is_refused(tmp_path: Path, pool: asyncpg.Pool) -> None:
    async with login_app(tmp_path, pool) as client:
        await send(client)
        await pool.execute("UPDATE otp_codes SET expires_at = now() - interval '1 second'")
        response = await verify(client, sent_codes(tmp_path)[0]["code"])
        assert (response.status, (await response.json())["error"]["code"]) == (401, "otp_invalid")
    assert await pool.fetchval("SELECT count(*) FROM otp_codes") == 0


async def test_a_phone_gets_one_code_per_interval_across_processes(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    async with login_app(tmp_path, pool) as first, login_app(tmp_path, pool) as second:
        assert (await send(first)).status == 202
        refused = await send(second)  # another ingest process, the same database
        assert refused.status == 429
        assert 55 <= int(refused.headers["Retry-After"]) <= 60
        assert (await send(second, "+8613900000001")).status == 202  # other phones still can


async def test_a_phone_gets_a_few_codes_a_day(tmp_path: Path, pool: asyncpg.Pool) -> None:
    async with login_app(tmp_path, pool, otp_resend_interval=0.001, otp_daily_sends=3) as client:
        statuses = []
        for _ in range(3):
            statuses.append((await send(client)).status)
            await pool.execute("UPDATE otp_sends SET sent_at = sent_at - interval '1 second'")
        refused = await send(client)
    assert statuses == [202, 202, 202]
    assert refused.status == 429  # with the one generic answer, see below


async def test_concurrent_sends_to_one_phone_send_one_code(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    async with login_app(tmp_path, pool) as client:
        answers = await asyncio.gather(*(send(client) for _ in range(4)))
    assert sorted(a.status for a in answers) == [202, 429, 429, 429]
    assert len(sent_codes(tmp_path)) == 1


class BrokenGateway:
    async def send(self, phone: str, text: str, *, phone_key: str, code: str) -> None:
        raise UnavailableError("gateway down", retry_after=5, code="sms_unavailable")


async def test_a_gateway_failure_answers_503_and_keeps_no_code(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    async with login_app(tmp_path, pool) as client:
        client.app[LOGIN].sender = BrokenGateway()
        response = await send(client)
        assert (response.status, response.headers["Retry-After"]) == (503, "5")
    assert await pool.fetchval("SELECT count(*) FROM otp_codes") == 0
    assert await pool.fetchval("SELECT count(*) FROM otp_sends") == 0


async def test_with_only_a_public_key_phone_login_is_off(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    from tests.unit.test_tokens import ED_PUBLIC_PEM

    async with login_app(tmp_path, pool, secret="", public_key=ED_PUBLIC_PEM) as client:
        for response in (await send(client), await verify(client, "123456")):
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "otp_login_disabled"


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/v1/otp", {"phone": "12345"}, "bad_phone"),
        ("/v1/otp", {"phone": ["+8613912345678"]}, "bad_phone"),
        ("/v1/otp/verify", {"phone": PHONE}, "bad_code"),
        ("/v1/otp/verify", {"phone": PHONE, "code": 123456}, "bad_code"),
    ],
)
async def test_malformed_login_requests_answer_400(
    tmp_path: Path, pool: asyncpg.Pool, path: str, body: dict[str, Any], code: str
) -> None:
    async with login_app(tmp_path, pool) as client:
        response = await client.post(path, json=body)
        assert (response.status, (await response.json())["error"]["code"]) == (400, code)


class HeldGateway:
    """An SMS gateway that takes every message and answers only when released."""

    def __init__(self) -> None:
        self.waiting = 0
        self.released = asyncio.Event()

    async def send(self, phone: str, text: str, *, phone_key: str, code: str) -> None:
        self.waiting += 1
        await self.released.wait()


async def test_a_slow_gateway_holds_no_database_connection_from_other_paths(
    tmp_path: Path, database: str
) -> None:
    pool = await connect_pool(database, max_size=20, stateless=True)  # as ingest's
    gateway = HeldGateway()
    try:
        async with login_app(tmp_path, pool, otp_prefix_sends_per_minute=100) as client:
            client.app[LOGIN].sender = gateway
            sends = [asyncio.ensure_future(send(client, phone)) for phone in phones(30)]

            async def all_waiting() -> bool:
                return gateway.waiting == 30

            await eventually_async(all_waiting, timeout=15, what="30 sends at the gateway")
            for _ in range(5):  # every other database path still answers at once
                lookup = client.get(f"/v1/ballots/{uuid.uuid4()}")
                answer = await asyncio.wait_for(lookup, timeout=3)
                assert (await answer.json())["error"]["code"] == "unknown_ballot"  # it looked
            gateway.released.set()
            assert [r.status for r in await asyncio.gather(*sends)] == [202] * 30
        assert await pool.fetchval("SELECT count(*) FROM otp_sends") == 30
    finally:
        await pool.close()


async def test_sends_are_capped_per_minute_across_processes(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    caps = {"otp_sends_per_minute": 3, "otp_prefix_sends_per_minute": 0}
    numbers = [*phones(2, "139"), *phones(2, "186")]
    async with login_app(tmp_path, pool, **caps) as one, login_app(tmp_path, pool, **caps) as two:
        apps = [one, two] * 2  # alternating between two ingest processes
        statuses = [
            (await send(app, phone)).status for app, phone in zip(apps, numbers, strict=True)
        ]
    assert statuses == [202, 202, 202, 429]
    assert len(sent_codes(tmp_path)) == 3


async def test_sends_are_capped_per_number_block(tmp_path: Path, pool: asyncpg.Pool) -> None:
    async with login_app(tmp_path, pool, otp_prefix_sends_per_minute=2) as client:
        block = [(await send(client, phone)).status for phone in phones(3, "139")]
        other_block = (await send(client, phones(1, "186")[0])).status
    assert (block, other_block) == ([202, 202, 429], 202)
    blocks = {r["prefix_key"] for r in await pool.fetch("SELECT prefix_key FROM otp_sends")}
    key = IDENTITY_KEY.encode()
    assert blocks == {block_key(key, "+8613900000000"), block_key(key, "+8618600000000")}
    assert block_key(key, "+8613900999999") != block_key(key, "+8613910000000")  # 7 digits


async def test_every_refused_send_answers_the_same_text_whatever_the_reason(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    """A 429 must not tell whether this phone asked recently (or today) or the caps hit."""
    settings = {"otp_prefix_sends_per_minute": 1, "otp_daily_sends": 1}
    async with login_app(tmp_path, pool, **settings) as client:
        assert (await send(client, PHONE)).status == 202
        just_asked = await refusal(await send(client, PHONE))
        await pool.execute("UPDATE otp_sends SET sent_at = sent_at - interval '2 minutes'")
        asked_today = await refusal(await send(client, PHONE))
        assert (await send(client, "+8618600000001")).status == 202
        block_full = await refusal(await send(client, "+8618600000002"))
    assert just_asked[0] == 429
    assert just_asked == asked_today == block_full
