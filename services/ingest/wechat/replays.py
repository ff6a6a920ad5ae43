"""One (timestamp, nonce) is one push: WeChat's retries of it are answered, another body is not.

WeChat signs the token, timestamp and nonce of every push, never its body, so whoever copies
one real query (from a log, a proxy, a mirror) could send any body under it. The first push
that passes every other check binds its pair to a keyed digest of its message (the body, or
in safe mode the XML inside it, so a retry sealed again with a fresh random prefix is still
the same message); the same pair again is answered only with the same message (WeChat's own
retries, answered as before from the message's row) and refused with any other. Pairs live
in Postgres, so every ingest process sees them, and only while their timestamp is accepted
(crypto.MAX_SKEW_SECONDS): after that the timestamp alone refuses the pair.
"""

from __future__ import annotations

import hashlib
import hmac

from services.ingest.wechat.crypto import MAX_SKEW_SECONDS
from services.ingest.wechat.errors import WeChatReplayError
from services.ingest.wechat.store import WeChatStore

# A pair is accepted while its timestamp is within MAX_SKEW_SECONDS of the ingest host's
# clock; rows are deleted by Postgres' clock, so keep them a window longer than that.
NONCE_RETENTION = 2 * MAX_SKEW_SECONDS
_DIGEST_SCOPE = b"wechat-push-message\x00"


def message_digest(identity_key: bytes, message: bytes) -> bytes:
    """Keyed, so the table cannot confirm a guessed message (which names its sender's openid)."""
    return hmac.new(identity_key, _DIGEST_SCOPE + message, hashlib.sha256).digest()


class Replays:
    def __init__(self, store: WeChatStore, identity_key: bytes) -> None:
        self.store, self.identity_key = store, identity_key

    async def check(self, query: dict[str, str], message: bytes) -> None:
        """Call once the push passed its signatures, with the message XML it carries; raises
        403 if its pair came with another message."""
        timestamp, nonce = int(query["timestamp"]), query["nonce"]
        digest = message_digest(self.identity_key, message)
        first = await self.store.bind_nonce(timestamp, nonce, digest)
        if not hmac.compare_digest(first, digest):
            raise WeChatReplayError("this timestamp and nonce came with another message")

    async def forget_expired(self) -> int:
        return await self.store.forget_nonces(NONCE_RETENTION)
