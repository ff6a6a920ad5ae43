"""The OAuth code exchange against a local fake of the WeChat API, and the session it starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest

from services.domain.errors import UnauthorizedError, UnavailableError
from services.domain.voters import voter_key, wechat_identity
from services.ingest.voters import TokenVerifier, token_voter_key
from services.ingest.wechat.errors import WeChatOAuthError, WeChatSnapshotUserError
from services.ingest.wechat.oauth import authorize_url, exchange_code, session_token
from services.ingest.wechat.routes import OAUTH_PER_MINUTE
from services.runtime.processes import free_port
from services.runtime.settings import Settings
from tests.support.fake_wechat import FakeWeChat, fake_wechat
from tests.unit.web_fakes import web_client

__all__ = ["fake_wechat"]
JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"


def _settings(fake: FakeWeChat, base: str | None = None) -> Settings:
    return Settings(
        wechat_appid=fake.appid,
        wechat_appsecret=fake.secret,
        wechat_api_base=base or fake.base,
        identity_key="pepper",
        web_jwt_secret=JWT_SECRET,
    )


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_code_is_exchanged_for_the_openid(
    fake_wechat: FakeWeChat, client: aiohttp.ClientSession
) -> None:
    code = fake_wechat.issue(OPENID)
    assert await exchange_code(client, _settings(fake_wechat), code) == OPENID
    sent = fake_wechat.requests[-1]
    assert (sent["code"], sent["grant_type"]) == (code, "authorization_code")


async def test_an_unknown_code_is_refused_with_errcode_40029(
    fake_wechat: FakeWeChat, client: aiohttp.ClientSession
) -> None:
    with pytest.raises(WeChatOAuthError, match="40029") as caught:
        await exchange_code(client, _settings(fake_wechat), "made-up")
    assert caught.value.status == 401


async def test_a_used_code_is_refused_with_errcode_40163(
    fake_wechat: FakeWeChat, client: aiohttp.ClientSession
) -> None:
    code = fake_wechat.issue(OPENID)
    await exchange_code(client, _settings(fake_wechat), code)
    with pytest.raises(WeChatOAuthError, match="40163"):
        await exchange_code(client, _settings(fake_wechat), code)


async def test_a_snapshot_visitor_is_refused(
    fake_wechat: FakeWeChat, client: aiohttp.ClientSession
) -> None:
    code = fake_wechat.issue(OPENID, snapshot=True)
    with pytest.raises(WeChatSnapshotUserError) as caught:
        await exchange_code(client, _settings(fake_wechat), code)
    assert caught.value.status == 403


async def test_an_unreachable_api_is_unavailable_not_a_crash(
    fake_wechat: FakeWeChat, client: aiohttp.ClientSession
) -> None:
    settings = _settings(fake_wechat, base=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UnavailableError):
        await exchange_code(client, settings, fake_wechat.issue(OPENID))


def test_the_session_token_holds_the_campaign_voter_key_and_never_the_openid(
    fake_wechat: FakeWeChat,
) -> None:
    settings = _settings(fake_wechat)
    token = session_token(settings, "zibo", OPENID)
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="votestream")
    assert claims["sub"] == voter_key(b"pepper", "zibo", wechat_identity(OPENID))
    assert (claims["chn"], claims["cid"]) == ("wechat", "zibo")
    assert OPENID not in token and OPENID not in str(claims)
    assert claims["exp"] > claims["iat"]


def test_the_authorize_link_returns_to_our_callback_with_the_campaign() -> None:
    url = authorize_url("wx123", "https://vote.example.org/", "zibo-2021-b2")
    assert "appid=wx123" in url and "state=zibo-2021-b2" in url
    assert "redirect_uri=https%3A%2F%2Fvote.example.org%2Fwechat%2Foauth%2Fcallback" in url
    assert url.endswith("#wechat_redirect") and "scope=snsapi_base" in url


def test_the_web_channel_derives_the_same_voter_key_as_wechat_text_votes(
    fake_wechat: FakeWeChat,
) -> None:
    token = TokenVerifier(JWT_SECRET).verify(
        "Bearer " + session_token(_settings(fake_wechat), "zibo", OPENID)
    )
    assert token.channel == "wechat"
    text_channel_key = voter_key(b"pepper", "zibo", wechat_identity(OPENID))
    assert token_voter_key(b"pepper", "zibo", token) == text_channel_key
    with pytest.raises(UnauthorizedError) as caught:
        token_voter_key(b"pepper", "another-campaign", token)
    assert caught.value.code == "token_wrong_campaign"


async def test_oauth_callbacks_from_one_network_are_limited_before_wechat_is_asked(
    fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    # each callback costs a call to WeChat with the app secret: a flood of made-up codes
    # must not turn into a flood of calls (or hold the client pool real logins need)
    settings = {
        "wechat_appid": fake_wechat.appid,
        "wechat_appsecret": fake_wechat.secret,
        "wechat_api_base": fake_wechat.base,
    }
    async with web_client(tmp_path, **settings) as ingest:
        answers = [
            await ingest.get(
                "/wechat/oauth/callback",
                params={"code": f"made-up-{n}", "state": "demo"},
                allow_redirects=False,
            )
            for n in range(OAUTH_PER_MINUTE + 1)
        ]
    assert [a.status for a in answers[:-1]] == [401] * OAUTH_PER_MINUTE
    assert answers[-1].status == 429 and int(answers[-1].headers["Retry-After"]) > 0
    assert len(fake_wechat.requests) == OAUTH_PER_MINUTE
