"""Keys derived from WeChat ids: stable across processes, and never the openid itself."""

from __future__ import annotations

from services.domain.voters import voter_key, wechat_identity
from services.ingest.wechat.keys import ballot_id_for, message_key, sender_key
from services.ingest.wechat.messages import Incoming

OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


def _event(create_time: str = "1700000000", key: str = "qrscene_zibo") -> Incoming:
    return Incoming("gh", OPENID, create_time, "event", event="subscribe", event_key=key)


def test_a_retried_message_keeps_its_key_and_ballot_id() -> None:
    text = Incoming(
        "gh", OPENID, "1700000000", "text", content="投票 1", msg_id="6054768590064713728"
    )
    retry = Incoming(
        "gh", OPENID, "1700000005", "text", content="投票 1", msg_id="6054768590064713728"
    )
    assert message_key(b"k", text) == message_key(b"k", retry)
    assert message_key(b"k", text).endswith(":6054768590064713728")
    assert ballot_id_for(message_key(b"k", text)) == ballot_id_for(message_key(b"k", retry))
    assert ballot_id_for("msg:1") != ballot_id_for("msg:2")


def test_one_msg_id_from_two_senders_is_two_messages_and_names_neither() -> None:
    """A forged MsgId from another sender must not take a follower's message or reply."""
    real = Incoming("gh", OPENID, "1700000000", "text", content="投票 1", msg_id="605476859")
    forged = Incoming("gh", "o-forger", "1700000000", "text", content="投票 2", msg_id="605476859")
    assert message_key(b"k", real) != message_key(b"k", forged)
    assert ballot_id_for(message_key(b"k", real)) != ballot_id_for(message_key(b"k", forged))
    assert OPENID not in message_key(b"k", real)
    assert sender_key(b"k", OPENID) in message_key(b"k", real)


def test_events_are_keyed_by_a_pseudonymous_sender_and_their_time() -> None:
    key = message_key(b"k", _event())
    assert OPENID not in key and sender_key(b"k", OPENID) in key
    assert key == message_key(b"k", _event())
    assert key != message_key(b"k", _event(create_time="1700000001"))
    assert key != message_key(b"k", _event(key="qrscene_other"))


def test_the_sender_key_is_no_campaigns_voter_key() -> None:
    assert sender_key(b"k", OPENID) != voter_key(b"k", "zibo", wechat_identity(OPENID))
    assert sender_key(b"k", OPENID) != sender_key(b"other", OPENID)
