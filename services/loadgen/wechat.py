"""The WeChat official account as WeChat's servers speak to it: signed pushes of message XML,
in safe mode (AES, `msg_signature`) whenever an EncodingAESKey is configured (the server then
refuses plaintext), retries of the same MsgId.

A follower joins the campaign by scanning its QR code (a SCAN event) before voting; then
`vote 1 3 5` casts. The reply carries the ballot_id (a receipt) when the vote was taken,
`success` when the broker was slow and the ballot waits in the outbox (taken too), or a
refusal text. Those map onto the web channel's statuses so one count serves both.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field

import aiohttp

from services.ingest.wechat.crypto import WeChatCipher, signature
from services.ingest.wechat.messages import cdata, parse_fields
from services.loadgen.channels import WEB_EXPECTED
from services.loadgen.traffic import Shot

RECEIPT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ACCOUNT = "gh_votestream_loadgen"


@dataclass
class WeChatChannel:
    ingest: str
    campaign_id: str
    token: str
    cipher: WeChatCipher | None
    candidate_numbers: dict[str, int]
    name: str = "wechat"
    msg_ids: dict[object, int] = field(default_factory=dict)

    def openid(self, voter: str) -> str:
        return "o" + hashlib.sha256(voter.encode()).hexdigest()[:27]  # made up, per run

    async def start_session(self, http: aiohttp.ClientSession, voter: str) -> None:
        xml = self._xml(
            voter,
            "event",
            f"<Event>{cdata('SCAN')}</Event><EventKey>{cdata(self.campaign_id)}</EventKey>",
        )
        await self._push(http, xml, forged=False)

    async def send(self, http: aiohttp.ClientSession, shot: Shot) -> int:
        numbers = [str(self.candidate_numbers.get(s, 99)) for s in shot.selections]
        msg_id = self.msg_ids.setdefault(shot.ballot_id, secrets.randbelow(10**18))
        xml = self._xml(
            shot.voter,
            "text",
            f"<Content>{cdata('vote ' + ' '.join(numbers))}</Content><MsgId>{msg_id}</MsgId>",
        )
        status, reply = await self._push(http, xml, forged=shot.kind == "bad_token")
        if status != 200:
            return status
        return 202 if reply == "success" or RECEIPT.search(reply) else 422

    def expected(self, shot: Shot) -> int:
        return 403 if shot.kind == "bad_token" else WEB_EXPECTED[shot.kind]

    def _xml(self, voter: str, kind: str, inner: str) -> str:
        return (
            f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName>"
            f"<FromUserName>{cdata(self.openid(voter))}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{cdata(kind)}</MsgType>"
            f"{inner}</xml>"
        )

    async def _push(
        self, http: aiohttp.ClientSession, xml: str, *, forged: bool
    ) -> tuple[int, str]:
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        token = "forged" if forged else self.token
        query = {
            "signature": signature(token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = xml
        if self.cipher is not None:
            encrypt = self.cipher.encrypt(xml.encode())
            query |= {
                "encrypt_type": "aes",
                "msg_signature": signature(token, timestamp, nonce, encrypt),
            }
            body = (
                f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName>"
                f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>"
            )
        async with http.post(f"{self.ingest}/wechat", params=query, data=body.encode()) as r:
            text = await r.text()
            status = r.status
        return status, self._content(text) if status == 200 else ""

    def _content(self, text: str) -> str:
        if text == "success":
            return text
        fields = parse_fields(text.encode())
        if self.cipher is not None and "Encrypt" in fields:
            fields = parse_fields(self.cipher.decrypt(fields["Encrypt"]))
        return fields.get("Content", "")
