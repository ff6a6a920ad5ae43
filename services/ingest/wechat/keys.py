"""Pseudonyms and keys derived from WeChat ids, so no raw openid is ever stored or logged."""

from __future__ import annotations

import uuid

from services.domain.voters import voter_key, wechat_identity
from services.ingest.wechat.messages import Incoming

# "@" cannot start a campaign id, so a sender key never equals any campaign's voter key
SENDER_SCOPE = "@wechat-sender"
BALLOT_NAMESPACE = uuid.UUID("6f1c2a52-3a4e-5b8e-9d0c-2f7a1e9b4c61")


def sender_key(identity_key: bytes, openid: str) -> str:
    """One follower across campaigns (their session), as an HMAC like a voter key."""
    return voter_key(identity_key, SENDER_SCOPE, wechat_identity(openid))


def message_key(identity_key: bytes, message: Incoming) -> str:
    """What WeChat's retries share: the sender (as a pseudonym) and the MsgId, or for events
    the sender and CreateTime (with the event and its key, so two menu clicks in one second
    stay two events). The sender is in every key so that a message forged with someone
    else's MsgId is a message of its own: it can take neither their reply nor their ballot."""
    sender = sender_key(identity_key, message.sender)
    if message.msg_id:
        return f"msg:{sender}:{message.msg_id}"
    return f"evt:{sender}:{message.create_time}:{message.event}:{message.event_key}"


def ballot_id_for(key: str) -> uuid.UUID:
    """The same message always makes the same ballot_id, in every ingest process."""
    return uuid.uuid5(BALLOT_NAMESPACE, key)
