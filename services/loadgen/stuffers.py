"""Stuffers: attackers that run beside the real voters; together they must add 0 ballots.

`--stuffers NAME,...` runs each registered stuffer for the load's duration at `--stuff-rate`
forged requests per second. A forged request is either refused (a 4xx, counted by its error
code) or taken (answered as genuine: a breach, and the run FAILS). Anything a stuffer slips
through also shows as a difference between the published totals and the real voters' own
count, which the loadgen checks at the end.

To add a stuffer: a class with `name`, `stats` and `attempt()`, and one line in STUFFERS
(services/loadgen/command.py, which sees every stuffer module).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
import orjson

from services.domain.campaign import Campaign
from services.ingest.wechat.crypto import WeChatCipher, signature
from services.ingest.wechat.messages import cdata
from services.runtime.settings import Settings

Outcome = Literal["refused", "taken", "error"]


@dataclass
class StuffStats:
    sent: int = 0
    taken: int = 0  # answered as if genuine
    errors: int = 0  # no answer, or a 5xx: neither refused nor taken
    refused: Counter[str] = field(default_factory=Counter)  # by the error code answered

    def record(self, outcome: Outcome, code: str) -> None:
        self.sent += 1
        if outcome == "refused":
            self.refused[code] += 1
        elif outcome == "taken":
            self.taken += 1
        else:
            self.errors += 1

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "refused": sum(self.refused.values()),
            "refused_by": dict(self.refused),
            "taken": self.taken,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class Target:
    """What every stuffer is pointed at."""

    ingest: str
    campaign: Campaign
    settings: Settings


class Stuffer(Protocol):
    name: str
    stats: StuffStats

    async def attempt(self, http: aiohttp.ClientSession) -> tuple[Outcome, str]:
        """One forged request; its outcome and the error code (or status) answered."""
        ...


async def answer_code(response: aiohttp.ClientResponse) -> str:
    """The `error.code` of a votestream refusal, else the HTTP status."""
    body = await response.read()
    try:
        return str(orjson.loads(body)["error"]["code"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return str(response.status)


class ForgedWeChat:
    """Copies the query of a real WeChat push and sends forged plaintext bodies under it.

    The query signature covers the token, timestamp and nonce, never the body, so this is
    what a stuffer who read one real push (in a log, a proxy, a mirror) tries first: for
    each made-up follower (a fresh FromUserName), a forged SCAN of the campaign's QR code
    (so a vote would land in this campaign) and then a forged `vote 1`. Half are sent
    with the query exactly as copied (safe mode's `encrypt_type` and `msg_signature` too),
    half stripped to a plain push. A fresh real push is copied every few seconds, so
    timestamps stay fresh and any refusal is for the body, not for the age of the query.
    The real push is a `list` command from a follower of the stuffer's own: answered, no
    ballot.
    """

    name = "forged-wechat"
    ACCOUNT = "gh_votestream_loadgen"
    RECAPTURE_SECONDS = 5.0

    def __init__(self, target: Target) -> None:
        settings = target.settings
        if not settings.wechat_token:
            raise SystemExit("loadgen: forged-wechat needs VOTESTREAM_WECHAT_TOKEN")
        self.url = f"{target.ingest}/wechat"
        self.campaign_id, self.token = target.campaign.id, settings.wechat_token
        self.cipher = (
            WeChatCipher(settings.wechat_aes_key, settings.wechat_appid)
            if settings.wechat_aes_key
            else None
        )
        self.stats = StuffStats()
        self.captured: dict[str, str] = {}
        self.captured_at = 0.0
        self.forged = 0
        self.follower = ""

    async def attempt(self, http: aiohttp.ClientSession) -> tuple[Outcome, str]:
        query = await self._copied_query(http)
        if self.forged % 2 == 0:
            self.follower = "o" + secrets.token_urlsafe(20)[:27]  # made up
            inner = f"<Event>{cdata('SCAN')}</Event><EventKey>{cdata(self.campaign_id)}</EventKey>"
            xml = self._xml(self.follower, "event", inner)
        else:
            msg_id = secrets.randbelow(10**18)
            inner = f"<Content>{cdata('vote 1')}</Content><MsgId>{msg_id}</MsgId>"
            xml = self._xml(self.follower, "text", inner)
        if (self.forged // 2) % 2:
            query = {k: v for k, v in query.items() if k not in ("encrypt_type", "msg_signature")}
        self.forged += 1
        async with http.post(self.url, params=query, data=xml.encode()) as response:
            code = await answer_code(response)
            if 400 <= response.status < 500:
                return "refused", code
            if response.status == 200:  # WeChat's "answered", `success` included
                return "taken", code
            return "error", code

    async def _copied_query(self, http: aiohttp.ClientSession) -> dict[str, str]:
        if time.monotonic() - self.captured_at > self.RECAPTURE_SECONDS:
            self.captured = await self._real_push(http)
            self.captured_at = time.monotonic()
        return dict(self.captured)

    async def _real_push(self, http: aiohttp.ClientSession) -> dict[str, str]:
        """A genuine push, signed as WeChat signs it; returns its query (what gets copied)."""
        msg_id = secrets.randbelow(10**18)
        own = "o" + secrets.token_urlsafe(20)[:27]
        body = self._xml(own, "text", f"<Content>{cdata('名单')}</Content><MsgId>{msg_id}</MsgId>")
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        query = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        if self.cipher is not None:
            encrypt = self.cipher.encrypt(body.encode())
            query |= {
                "encrypt_type": "aes",
                "msg_signature": signature(self.token, timestamp, nonce, encrypt),
            }
            body = f"<xml><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
        async with http.post(self.url, params=query, data=body.encode()) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"loadgen: a genuine WeChat push got HTTP {response.status}")
        return query

    def _xml(self, openid: str, kind: str, inner: str) -> str:
        return (
            f"<xml><ToUserName>{cdata(self.ACCOUNT)}</ToUserName>"
            f"<FromUserName>{cdata(openid)}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{cdata(kind)}</MsgType>"
            f"{inner}</xml>"
        )


async def run_stuffers(
    http: aiohttp.ClientSession, stuffers: list[Stuffer], rate: float, seconds: float
) -> None:
    """Each stuffer at `rate` forged requests per second, one at a time, for `seconds`."""

    async def one(stuffer: Stuffer) -> None:
        loop = asyncio.get_running_loop()
        due = start = loop.time()
        while due < start + seconds:
            try:
                outcome, code = await stuffer.attempt(http)
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome, code = "error", type(exc).__name__
            stuffer.stats.record(outcome, code)
            due += 1 / rate
            await asyncio.sleep(max(0.0, due - loop.time()))

    await asyncio.gather(*(one(s) for s in stuffers))


def stuffing_report(stuffers: list[Stuffer]) -> list[str]:
    lines = []
    for s in stuffers:
        by_code = ", ".join(f"{k} {v}" for k, v in sorted(s.stats.refused.items())) or "none"
        lines.append(
            f"  stuffer   {s.name}: sent {s.stats.sent}, refused {sum(s.stats.refused.values())}"
            f" ({by_code}), TAKEN {s.stats.taken}, errors {s.stats.errors}"
        )
    return lines
