"""WeChat message XML: parsed without entities or DTDs, size-limited, rendered safely."""

from __future__ import annotations

import pytest
from defusedxml.ElementTree import fromstring

from services.ingest.wechat.errors import WeChatXmlError
from services.ingest.wechat.messages import (
    MAX_XML_BYTES,
    Incoming,
    parse_fields,
    parse_message,
    text_reply,
)

TEXT = (
    b"<xml><ToUserName><![CDATA[gh_account]]></ToUserName>"
    b"<FromUserName><![CDATA[o-follower]]></FromUserName><CreateTime>1700000000</CreateTime>"
    b"<MsgType><![CDATA[text]]></MsgType>"
    + "<Content><![CDATA[投票 1 3]]></Content>".encode()
    + b"<MsgId>1234567890123456</MsgId></xml>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    b"<MsgType>text</MsgType><Content>&lol3;</Content></xml>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>"
    b"<MsgType>text</MsgType><Content>&xxe;</Content></xml>"
)


def test_a_text_message_is_read_field_by_field() -> None:
    message = parse_message(TEXT)
    assert message == Incoming(
        account="gh_account",
        sender="o-follower",
        create_time="1700000000",
        msg_type="text",
        content="投票 1 3",
        msg_id="1234567890123456",
    )


def test_an_event_carries_its_name_and_key() -> None:
    xml = (
        b"<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>"
        b"<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event>"
        b"<EventKey>qrscene_zibo</EventKey></xml>"
    )
    message = parse_message(xml)
    assert (message.event, message.event_key, message.msg_id) == ("subscribe", "qrscene_zibo", "")


@pytest.mark.parametrize(
    "xml",
    [
        BILLION_LAUGHS,
        XXE,
        b"<xml><ToUserName>a</ToUserName>",
        b"not xml at all",
        b"<html><ToUserName>a</ToUserName></html>",
        b"<xml><ToUserName>a</ToUserName></xml>",
        b"<xml>" + b"<Content>x</Content>" * (MAX_XML_BYTES // 10) + b"</xml>",
    ],
    ids=["billion-laughs", "xxe", "truncated", "not-xml", "wrong-root", "no-fields", "oversized"],
)
def test_hostile_or_broken_xml_is_refused_as_malformed(xml: bytes) -> None:
    with pytest.raises(WeChatXmlError) as caught:
        parse_message(xml)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "xml",
    [
        TEXT.replace(b"<![CDATA[o-follower]]>", b""),
        TEXT.replace(b"<![CDATA[o-follower]]>", b"<![CDATA[   ]]>"),
        TEXT.replace(b"<![CDATA[gh_account]]>", b""),
        TEXT.replace(b"<![CDATA[text]]>", b""),
    ],
    ids=["no-sender", "blank-sender", "no-account", "no-type"],
)
def test_a_message_without_a_sender_account_or_type_is_refused(xml: bytes) -> None:
    # every blank sender would otherwise be one and the same voter (`wechat:`)
    with pytest.raises(WeChatXmlError) as caught:
        parse_message(xml)
    assert caught.value.status == 400


def test_a_reply_survives_content_that_would_end_its_cdata() -> None:
    message = parse_message(TEXT)
    xml = text_reply(message, "a]]><b>&c", 1700000001)
    root = fromstring(xml)
    assert root.findtext("Content") == "a]]><b>&c"
    assert root.findtext("ToUserName") == "o-follower"
    assert parse_fields(xml.encode())["FromUserName"] == "gh_account"
