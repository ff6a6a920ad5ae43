"""H5 voting inside WeChat: the OAuth code exchanged for the openid, then a voter session.

The session token goes to the browser, so it never holds the openid: its `sub` is the
voter key this openid has in the campaign (what the text channel computes too), bound to
that campaign by the `cid` claim, with `chn: "wechat"`.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from services.domain.errors import UnauthorizedError, UnavailableError
from services.domain.voters import voter_key, wechat_identity
from services.ingest.voters import WECHAT_SESSION, sign_own_token
from services.ingest.wechat.errors import WeChatOAuthError, WeChatSnapshotUserError
from services.runtime.settings import Settings

AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
CALLBACK_PATH = "/wechat/oauth/callback"
API_TIMEOUT_SECONDS = 5.0
SESSION_SECONDS = 2 * 3600


async def exchange_code(client: aiohttp.ClientSession, settings: Settings, code: str) -> str:
    """The openid for an OAuth `code`; refuses WeChat's errors and snapshot visitors."""
    data = await _access_token(client, settings, code)
    if data.get("errcode"):
        errcode = str(data["errcode"])[:12]
        raise WeChatOAuthError(f"WeChat refused the login code (errcode {errcode}); open again")
    if data.get("is_snapshotuser") == 1:
        raise WeChatSnapshotUserError("please open the page in WeChat itself to vote")
    openid = data.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WeChatOAuthError("WeChat answered without an openid")
    return openid


async def _access_token(
    client: aiohttp.ClientSession, settings: Settings, code: str
) -> dict[str, Any]:
    url = settings.wechat_api_base.rstrip("/") + "/sns/oauth2/access_token"
    params = {
        "appid": settings.wechat_appid,
        "secret": settings.wechat_appsecret,
        "code": code,
        "grant_type": "authorization_code",
    }
    try:
        async with asyncio.timeout(API_TIMEOUT_SECONDS), client.get(url, params=params) as resp:
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise UnavailableError(
            "the WeChat API did not answer", code="wechat_api_unavailable"
        ) from exc
    if not isinstance(data, dict):
        raise WeChatOAuthError("the WeChat API answered something unexpected")
    return data


def session_token(
    settings: Settings, campaign_id: str, openid: str, now: float | None = None
) -> str:
    if not settings.web_jwt_secret:
        raise UnauthorizedError("web voting is not configured", code="web_voting_disabled")
    key = voter_key(settings.identity_key_bytes, campaign_id, wechat_identity(openid))
    # this server's own token type: only such a session may carry chn/cid (voters.py)
    return sign_own_token(
        settings.web_jwt_secret,
        WECHAT_SESSION,
        key,
        SESSION_SECONDS,
        now=now,
        chn="wechat",
        cid=campaign_id,
    )


def authorize_url(appid: str, public_base: str, campaign_id: str) -> str:
    """The link WeChat opens to log the follower in silently (snsapi_base) for a campaign."""
    query = urlencode(
        {
            "appid": appid,
            "redirect_uri": public_base.rstrip("/") + CALLBACK_PATH,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": campaign_id,
        },
        quote_via=quote,
    )
    return f"{AUTHORIZE_URL}?{query}#wechat_redirect"
