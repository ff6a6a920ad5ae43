"""The HTTP face of the account: WeChat's signed requests in, signed (and sealed) replies out."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from services.ingest.wechat.crypto import WeChatCipher, check_signature, check_timestamp, signature
from services.ingest.wechat.errors import WeChatCipherError, WeChatPlaintextError
from services.ingest.wechat.messages import encrypted_envelope, parse_fields


def is_safe(query: dict[str, str]) -> bool:
    return query.get("encrypt_type", "raw").lower() == "aes"


@dataclass(frozen=True)
class Envelope:
    """Verifies where a request came from and opens/seals safe-mode bodies."""

    token: str
    cipher: WeChatCipher | None  # None: no EncodingAESKey configured, plaintext only

    def verify(self, query: dict[str, str]) -> None:
        """The query signature every WeChat request carries; raises 403 otherwise."""
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        check_signature(query.get("signature", ""), self.token, timestamp, nonce)
        check_timestamp(timestamp)

    def open(self, body: bytes, query: dict[str, str]) -> bytes:
        """The message XML: a safe-mode body once `msg_signature` matches; a plaintext body
        only when no EncodingAESKey is configured, since the query signature covers the
        token, timestamp and nonce but never the body (a copied query carries any body)."""
        if not is_safe(query):
            if self.cipher is not None:
                raise WeChatPlaintextError("this account takes safe-mode (encrypted) pushes only")
            return body
        if self.cipher is None:
            raise WeChatCipherError("safe mode is not configured on this server")
        encrypt = parse_fields(body).get("Encrypt", "")
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        check_signature(query.get("msg_signature", ""), self.token, timestamp, nonce, encrypt)
        return self.cipher.decrypt(encrypt)

    def seal(self, reply_xml: str) -> str:
        if self.cipher is None:
            raise WeChatCipherError("safe mode is not configured on this server")
        encrypt = self.cipher.encrypt(reply_xml.encode())
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
        msg_signature = signature(self.token, timestamp, nonce, encrypt)
        return encrypted_envelope(encrypt, msg_signature, timestamp, nonce)
