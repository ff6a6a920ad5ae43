"""WeChat's signatures and safe-mode encryption, exactly as the official protocol.

Safe mode: AES-256-CBC, key = base64(EncodingAESKey + "="), IV = key[:16], plaintext =
16 random bytes ‖ 4-byte big-endian length ‖ message ‖ appid, PKCS#7-padded to 32 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from services.ingest.wechat.errors import WeChatCipherError, WeChatSignatureError

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
PREFIX = 16
# WeChat retries a push 3 times within about 15 s; a minute either way covers those and
# any sane clock skew, and bounds how long a copied query stays usable at all (and how
# long replays.py must remember its nonce).
MAX_SKEW_SECONDS = 60


def signature(*parts: str) -> str:
    """SHA-1 of the parts sorted and joined: the URL check (token, timestamp, nonce) and,
    with the Encrypt field added, `msg_signature`."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 (protocol)


def check_signature(given: str, *parts: str) -> None:
    if not hmac.compare_digest(signature(*parts).encode(), given.lower().encode()):
        raise WeChatSignatureError("signature does not match")


def check_timestamp(timestamp: str, now: float | None = None) -> None:
    """Refuses stale or future requests, so a captured one cannot be replayed later."""
    try:
        moment = int(timestamp)
    except ValueError as exc:
        raise WeChatSignatureError("timestamp is not a number") from exc
    if abs((time.time() if now is None else now) - moment) > MAX_SKEW_SECONDS:
        raise WeChatSignatureError("timestamp too far from now")


class WeChatCipher:
    def __init__(self, encoding_aes_key: str, appid: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("an EncodingAESKey has 43 characters")
        self.key = base64.b64decode(encoding_aes_key + "=", validate=True)
        self.appid = appid.encode()

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:PREFIX]))

    def encrypt(self, message: bytes, prefix: bytes | None = None) -> str:
        """Base64 ciphertext; `prefix` only for known-answer tests (random otherwise)."""
        prefix = secrets.token_bytes(PREFIX) if prefix is None else prefix
        plain = prefix + struct.pack(">I", len(message)) + message + self.appid
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher().encryptor()
        sealed = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(sealed).decode()

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside; refuses bad base64, padding, length or appid."""
        try:
            sealed = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WeChatCipherError("Encrypt is not base64") from exc
        if not sealed or len(sealed) % BLOCK:
            raise WeChatCipherError("ciphertext is not a whole number of blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(sealed) + decryptor.finalize()
        body = plain[: -_padding(plain)]
        if len(body) < PREFIX + 4:
            raise WeChatCipherError("plaintext too short")
        (length,) = struct.unpack(">I", body[PREFIX : PREFIX + 4])
        message, appid = body[PREFIX + 4 : PREFIX + 4 + length], body[PREFIX + 4 + length :]
        if len(message) != length or not hmac.compare_digest(appid, self.appid):
            raise WeChatCipherError("message length or appid does not match")
        return message


def _padding(plain: bytes) -> int:
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise WeChatCipherError("bad padding")
    return pad
