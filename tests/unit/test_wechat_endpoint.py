"""Which bodies the endpoint opens: safe mode through wechatpy, plaintext only without a key."""

from __future__ import annotations

import time

import pytest
from defusedxml.ElementTree import fromstring
from wechatpy.crypto import WeChatCrypto

from services.ingest.wechat.crypto import WeChatCipher, signature
from services.ingest.wechat.endpoint import Envelope
from services.ingest.wechat.errors import WeChatPlaintextError, WeChatSignatureError

TOKEN, APPID = "tok3n", "wx2c2769f8efd9abc2"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
VOTE = (
    "<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o-made-up]]>"
    "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[投票 1]]></Content><MsgId>42</MsgId></xml>"
)


def _query() -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), "1320562132"
    return {"signature": signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


def test_with_an_aes_key_a_plaintext_body_under_a_valid_query_is_refused() -> None:
    envelope = Envelope(TOKEN, WeChatCipher(AES_KEY, APPID))
    query = _query()
    envelope.verify(query)  # the query itself is genuine: the body is what nobody signed
    with pytest.raises(WeChatPlaintextError) as refused:
        envelope.open(VOTE.encode(), query)
    assert refused.value.status == 403
    with pytest.raises(WeChatPlaintextError):
        envelope.open(VOTE.encode(), {**query, "encrypt_type": "raw"})


def test_with_an_aes_key_a_body_sealed_by_wechatpy_opens() -> None:
    envelope = Envelope(TOKEN, WeChatCipher(AES_KEY, APPID))
    query = _query()
    sealed = fromstring(
        WeChatCrypto(TOKEN, AES_KEY, APPID).encrypt_message(
            VOTE, query["nonce"], query["timestamp"]
        )
    )
    query |= {"encrypt_type": "aes", "msg_signature": sealed.findtext("MsgSignature") or ""}
    body = f"<xml><Encrypt>{sealed.findtext('Encrypt')}</Encrypt></xml>".encode()
    assert envelope.open(body, query) == VOTE.encode()
    with pytest.raises(WeChatSignatureError):  # msg_signature covers the body
        other = WeChatCrypto(TOKEN, AES_KEY, APPID).encrypt_message(VOTE + " ", "1", "2")
        envelope.open(
            f"<xml><Encrypt>{fromstring(other).findtext('Encrypt')}</Encrypt></xml>".encode(), query
        )


def test_without_an_aes_key_plaintext_is_the_message() -> None:
    assert Envelope(TOKEN, None).open(VOTE.encode(), _query()) == VOTE.encode()
