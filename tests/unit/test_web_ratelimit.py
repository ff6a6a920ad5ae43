"""Rate limits of the web channel: token buckets, and 429 with Retry-After through the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.domain.errors import RateLimitedError, SettingsError
from services.ingest.ratelimit import TokenBuckets
from services.runtime.settings import Settings
from tests.unit.web_fakes import CountingSink, bearer, voter_token, web_client

URL = "/v1/campaigns/demo/ballots"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0  # every key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0


def test_a_bucket_refills_only_up_to_its_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=2, clock=clock)
    buckets.take("a")
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)] == [0, 0, pytest.approx(1.0)]


def test_forgotten_keys_are_the_least_recently_seen() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=0.001, burst=1, max_keys=2, clock=clock)
    buckets.take("a")
    buckets.take("b")
    buckets.take("a")  # a is used again: b is now the oldest
    buckets.take("c")
    assert buckets.take("b") == 0  # b was forgotten, so it starts full
    assert buckets.take("c") > 0  # c, newer, is still remembered


def test_a_rate_of_zero_switches_the_limit_off() -> None:
    buckets = TokenBuckets(rate=0, burst=1, clock=Clock())
    assert [buckets.take("a") for _ in range(1000)] == [0] * 1000


def test_rates_come_from_settings_and_zero_is_allowed() -> None:
    env = {"VOTESTREAM_RATE_IP_PER_SECOND": "0", "VOTESTREAM_RATE_VOTER_PER_SECOND": "5000"}
    settings = Settings.from_env(env)
    assert (settings.rate_ip_per_second, settings.rate_voter_per_second) == (0, 5000)
    with pytest.raises(SettingsError, match="VOTESTREAM_RATE_IP_PER_SECOND"):
        Settings.from_env({"VOTESTREAM_RATE_IP_PER_SECOND": "-1"})


def test_require_raises_429_with_whole_seconds_to_wait() -> None:
    buckets = TokenBuckets(rate=0.25, burst=1, clock=Clock())
    buckets.require("a", "from here")
    with pytest.raises(RateLimitedError) as caught:
        buckets.require("a", "from here")
    assert (caught.value.status, caught.value.retry_after) == (429, 4)


async def test_one_network_over_its_limit_gets_429_and_publishes_nothing(tmp_path: Path) -> None:
    sink = CountingSink()
    settings = {"rate_ip_per_second": 0.5, "rate_ip_burst": 3}
    async with web_client(tmp_path, sink=sink, **settings) as client:
        codes = []
        for i in range(4):  # different voters, one network; bad tokens count too
            token = voter_token(f"v{i}") if i != 1 else "bad"
            response = await client.post(URL, json={"selections": ["c01"]}, headers=bearer(token))
            codes.append(response.status)
        body = await response.json()
    assert codes == [202, 401, 202, 429]
    assert body["error"]["code"] == "rate_limited"
    assert response.headers["Retry-After"] == "2"
    assert len(sink.ballots) == 2


async def test_one_voter_over_its_limit_gets_429_while_others_vote(tmp_path: Path) -> None:
    sink = CountingSink()
    settings = {"rate_voter_per_second": 0.1, "rate_voter_burst": 2}
    async with web_client(tmp_path, sink=sink, **settings) as client:

        async def cast(sub: str) -> tuple[int, str | None]:
            response = await client.post(
                URL, json={"selections": ["c01"]}, headers=bearer(voter_token(sub))
            )
            return response.status, response.headers.get("Retry-After")

        assert [await cast("alice") for _ in range(3)] == [(202, None), (202, None), (429, "10")]
        assert await cast("bob") == (202, None)
    assert len(sink.ballots) == 3


async def test_phone_login_is_limited_per_network(tmp_path: Path) -> None:
    async with web_client(tmp_path, rate_otp_ip_per_minute=2) as client:
        codes = []
        for path in ("/v1/otp", "/v1/otp/verify", "/v1/otp"):
            codes.append((await client.post(path, json={"phone": 5})).status)
        response = await client.post("/v1/otp", json={"phone": "+8613800138000"})
    assert codes == [400, 400, 429]
    assert response.status == 429 and int(response.headers["Retry-After"]) == 30
