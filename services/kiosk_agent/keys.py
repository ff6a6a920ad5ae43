"""The device key pair: the secret stays on the kiosk, the public key goes to the registry.

Both files hold the base64 of the raw 32 bytes (FILE: secret, mode 0600; FILE.pub: public).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def keygen(out: Path) -> Path:
    """Writes a new key pair; refuses to overwrite a key. Returns the public key's path."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as secret:
        secret.write(base64.b64encode(seed).decode() + "\n")
    public = out.with_name(out.name + ".pub")
    public.write_text(public_key_text(key) + "\n")
    return public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    raw = base64.b64decode(path.read_text().strip(), validate=True)
    if len(raw) != 32:
        raise ValueError(f"{path} does not hold a base64 raw 32-byte Ed25519 key")
    return Ed25519PrivateKey.from_private_bytes(raw)


def sign_batch(key: Ed25519PrivateKey, timestamp: str, body: bytes) -> str:
    """Base64 Ed25519 over `timestamp + "\\n" + body`, as the server verifies it."""
    return base64.b64encode(key.sign(timestamp.encode() + b"\n" + body)).decode()
