"""WeChat message XML: parsed safely (no DTD, no entities, size-limited) and rendered."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError  # types only: parsing is defused

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from services.ingest.wechat.errors import WeChatXmlError

MAX_XML_BYTES = 16 * 1024  # a text message is at most 2048 bytes of content


@dataclass(frozen=True)
class Incoming:
    """One message or event; `sender` is the openid and must never leave this process."""

    account: str
    sender: str
    create_time: str
    msg_type: str
    content: str = ""
    msg_id: str = ""
    event: str = ""
    event_key: str = ""


def parse_fields(xml: bytes) -> dict[str, str]:
    """The `<xml>` root's child elements as text; anything else is refused."""
    if len(xml) > MAX_XML_BYTES:
        raise WeChatXmlError(f"message over {MAX_XML_BYTES} bytes")
    try:
        root: Element = fromstring(xml, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise WeChatXmlError(f"not a WeChat message: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise WeChatXmlError("the root element must be <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


REQUIRED = ("ToUserName", "FromUserName", "CreateTime", "MsgType")


def parse_message(xml: bytes) -> Incoming:
    fields = parse_fields(xml)
    # present and not blank: a blank sender would make every such message one voter
    missing = next((name for name in REQUIRED if not fields.get(name)), None)
    if missing is not None:
        raise WeChatXmlError(f"message without {missing}")
    return Incoming(
        account=fields["ToUserName"],
        sender=fields["FromUserName"],
        create_time=fields["CreateTime"],
        msg_type=fields["MsgType"].lower(),
        content=fields.get("Content", ""),
        msg_id=fields.get("MsgId", ""),
        event=fields.get("Event", "").lower(),
        event_key=fields.get("EventKey", ""),
    )


def cdata(text: str) -> str:
    # "]]>" would end the section early: split it across two sections
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(message: Incoming, content: str, now: int) -> str:
    return (
        f"<xml><ToUserName>{cdata(message.sender)}</ToUserName>"
        f"<FromUserName>{cdata(message.account)}</FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType>{cdata('text')}</MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )


def encrypted_envelope(encrypt: str, msg_signature: str, timestamp: str, nonce: str) -> str:
    return (
        f"<xml><Encrypt>{cdata(encrypt)}</Encrypt>"
        f"<MsgSignature>{cdata(msg_signature)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>"
    )
