"""A local stand-in for the WeChat API's OAuth code exchange, on a free port.

Codes are registered by the test: `fake.issue(openid)` returns a fresh code, which the
fake redeems once (a second use answers errcode 40163, an unknown code 40029, as WeChat
does). `snapshot=True` answers as WeChat does for a visitor of a Moments page snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from defusedxml.ElementTree import fromstring
from wechatpy.crypto import WeChatCrypto

from services.runtime.processes import free_port
from tests.support.system import REPO, System
from tests.support.waiting import eventually


@dataclass
class FakeWeChat:
    appid: str
    secret: str
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    requests: list[dict[str, str]] = field(default_factory=list)
    base: str = ""

    def issue(self, openid: str, *, snapshot: bool = False) -> str:
        code = secrets.token_hex(16)
        answer: dict[str, Any] = {
            "access_token": secrets.token_hex(20),
            "expires_in": 7200,
            "refresh_token": secrets.token_hex(20),
            "openid": openid,
            "scope": "snsapi_base",
        }
        if snapshot:
            answer["is_snapshotuser"] = 1
        self.codes[code] = answer
        return code

    async def access_token(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append(query)
        if query.get("appid") != self.appid or query.get("secret") != self.secret:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        if query.get("grant_type") != "authorization_code":
            return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        code = query.get("code", "")
        if code in self.used:
            return web.json_response({"errcode": 40163, "errmsg": "code been used"})
        if code not in self.codes:
            return web.json_response({"errcode": 40029, "errmsg": "invalid code"})
        self.used.add(code)
        return web.json_response(self.codes[code])


@contextlib.contextmanager
def running_fake_wechat(appid: str, secret: str) -> Iterator[FakeWeChat]:
    """The fake, served from its own thread and loop so sync and async tests can both call it."""
    fake = FakeWeChat(appid, secret)
    app = web.Application()
    app.router.add_get("/sns/oauth2/access_token", fake.access_token)
    runner = web.AppRunner(app)
    loop = asyncio.new_event_loop()
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, name="fake-wechat", daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextlib.contextmanager
def another_ingest(system: System, **env: str) -> Iterator[str]:
    """Another ingest process on the system's Kafka and Postgres (as a scaled-out deployment
    runs), with its own VOTESTREAM_* overrides; yields its base URL."""
    port = free_port()
    merged = {**system.env, "VOTESTREAM_INGEST_PORT": str(port)} | env
    proc = subprocess.Popen([sys.executable, "-m", "services", "ingest"], env=merged, cwd=REPO)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # exited: fail below rather than wait

    try:
        eventually(ready, timeout=60, what="the other ingest ready")
        assert proc.poll() is None, "the other ingest exited"
        yield base
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


@pytest.fixture
def fake_wechat() -> Iterator[FakeWeChat]:
    with running_fake_wechat("wx" + secrets.token_hex(8), secrets.token_hex(16)) as fake:
        yield fake


def made_up_openid() -> str:
    return "o" + secrets.token_urlsafe(20)[:27]


class WeChatPeer:
    """Plays WeChat's servers against an ingest's `/wechat`: signed pushes, plain or safe mode.

    Safe mode goes through wechatpy, an independent implementation of the protocol.
    """

    def __init__(self, base: str, token: str, appid: str, aes_key: str) -> None:
        self.base, self.token, self.account = base, token, "gh_votestream"
        self.crypto = WeChatCrypto(token, aes_key, appid)

    def query(self) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        digest = hashlib.sha1("".join(sorted((self.token, timestamp, nonce))).encode())
        return {"signature": digest.hexdigest(), "timestamp": timestamp, "nonce": nonce}

    def request(
        self, xml: str, *, safe: bool = False, like: dict[str, str] | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The query and body WeChat would send for this message: a fresh timestamp and nonce,
        or those of `like` (a retry sealed again, with a new random prefix)."""
        query = self.query() if like is None else {k: like[k] for k in self.query()}
        body = xml
        if safe:
            sealed = fromstring(
                self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
            )
            query.update(encrypt_type="aes", msg_signature=sealed.findtext("MsgSignature") or "")
            encrypt = sealed.findtext("Encrypt")
            body = f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
            body += f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        return query, body.encode()

    def post(self, query: dict[str, str], body: bytes, base: str | None = None) -> httpx.Response:
        """One POST as given: a first push, WeChat's identical retry, or a forger's copy."""
        return httpx.post(f"{base or self.base}/wechat", params=query, content=body, timeout=10)

    def push(self, xml: str, *, safe: bool = False, base: str | None = None) -> httpx.Response:
        return self.post(*self.request(xml, safe=safe), base=base)

    def reply(self, response: httpx.Response, *, safe: bool = False) -> str:
        """The reply's text ("" for `success`), its safe-mode signature checked by wechatpy."""
        assert response.status_code == 200, response.text
        if response.text == "success":
            return ""
        xml = response.text
        if safe:
            sealed = fromstring(xml)
            xml = self.crypto.decrypt_message(
                xml,
                sealed.findtext("MsgSignature"),
                sealed.findtext("TimeStamp"),
                sealed.findtext("Nonce"),
            )
        return fromstring(xml).findtext("Content") or ""

    def join(self, openid: str, campaign_id: str) -> None:
        """Follows the account through the campaign's QR code, then scans it again."""
        subscribe = self.push(self.event(openid, "subscribe", f"qrscene_{campaign_id}"), safe=True)
        assert "已进入投票活动" in self.reply(subscribe, safe=True)
        scan = self.push(self.event(openid, "SCAN", campaign_id), safe=True)
        assert "已进入投票活动" in self.reply(scan, safe=True)

    def text(self, openid: str, content: str, msg_id: int) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        )

    def event(self, openid: str, event: str, key: str = "") -> str:
        return (
            f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>"
        )
