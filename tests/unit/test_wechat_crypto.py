"""WeChat signatures and safe mode against the official samples and an independent peer."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.crypto import PrpCrypto

from services.ingest.wechat.crypto import (
    WeChatCipher,
    check_signature,
    check_timestamp,
    signature,
)
from services.ingest.wechat.errors import WeChatCipherError, WeChatSignatureError
from services.ingest.wechat.messages import parse_message

SAMPLE_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_APPID = "wx2c2769f8efd9abc2"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PG"
    "HQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6"
    "tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp"
    "3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhv"
    "Ql+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)


def test_url_check_signature_matches_the_official_sample() -> None:
    assert signature("AAAAA", "1714036504", "1514711492") == (
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    )


def test_post_signature_matches_the_official_sample() -> None:
    assert signature("AAAAA", "1714037059", "486452656") == (
        "899cf89e464efb63f54ddac96b0a0a235f53aa78"
    )


def test_msg_signature_of_tencents_safe_mode_sample() -> None:
    expected = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    assert signature("spamtest", "1409735669", "1320562132", SAMPLE_ENCRYPT) == expected
    check_signature(expected.upper(), "spamtest", "1409735669", "1320562132", SAMPLE_ENCRYPT)


def test_tencents_sample_decrypts_to_its_text_message() -> None:
    message = parse_message(WeChatCipher(SAMPLE_KEY, SAMPLE_APPID).decrypt(SAMPLE_ENCRYPT))
    assert message.sender == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert (message.msg_type, message.content) == ("text", "abcdteT")
    assert message.msg_id == "6054768590064713728"


def test_reencrypting_with_the_same_prefix_gives_the_same_ciphertext() -> None:
    cipher = WeChatCipher(SAMPLE_KEY, SAMPLE_APPID)
    decryptor = Cipher(algorithms.AES(cipher.key), modes.CBC(cipher.key[:16])).decryptor()
    prefix = (decryptor.update(base64.b64decode(SAMPLE_ENCRYPT)) + decryptor.finalize())[:16]
    assert cipher.encrypt(cipher.decrypt(SAMPLE_ENCRYPT), prefix) == SAMPLE_ENCRYPT


def test_random_prefixes_differ_and_round_trip() -> None:
    cipher = WeChatCipher(SAMPLE_KEY, SAMPLE_APPID)
    first, second = cipher.encrypt("投票 1 3".encode()), cipher.encrypt("投票 1 3".encode())
    assert first != second
    assert cipher.decrypt(first) == cipher.decrypt(second) == "投票 1 3".encode()


def test_wechatpy_and_we_read_each_others_ciphertexts() -> None:
    peer = PrpCrypto(base64.b64decode(SAMPLE_KEY + "="))
    ours = WeChatCipher(SAMPLE_KEY, SAMPLE_APPID)
    assert ours.decrypt(peer.encrypt("<xml>你好</xml>", SAMPLE_APPID)) == "<xml>你好</xml>".encode()
    assert peer.decrypt(ours.encrypt("<xml>再见</xml>".encode()), SAMPLE_APPID) == "<xml>再见</xml>"


def _reseal(cipher: WeChatCipher, plain: bytes) -> str:
    encryptor = Cipher(algorithms.AES(cipher.key), modes.CBC(cipher.key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def _plain(
    length: int = 5, appid: bytes = SAMPLE_APPID.encode(), tail: bytes | None = None
) -> bytes:
    body = b"\x00" * 16 + length.to_bytes(4, "big") + b"hello" + appid
    pad = 32 - len(body) % 32
    return body + (bytes([pad]) * pad if tail is None else tail)


@pytest.mark.parametrize(
    "plain",
    [
        _plain(tail=b"\x00" * 21),
        _plain(tail=b"\x05" * 20 + b"\x15"),
        _plain(length=4096),
        _plain(appid=b"wx0000000000000000"),
        _plain(appid=b"wx2c2769f8efd9abc2x"[:-2]),
    ],
    ids=["zero-padding", "inconsistent-padding", "length-beyond-end", "other-appid", "short-appid"],
)
def test_tampered_plaintexts_are_refused(plain: bytes) -> None:
    cipher = WeChatCipher(SAMPLE_KEY, SAMPLE_APPID)
    assert len(plain) % 32 == 0
    with pytest.raises(WeChatCipherError):
        cipher.decrypt(_reseal(cipher, plain))


def test_a_wellformed_plaintext_passes_the_same_checks() -> None:
    cipher = WeChatCipher(SAMPLE_KEY, SAMPLE_APPID)
    assert cipher.decrypt(_reseal(cipher, _plain())) == b"hello"


@pytest.mark.parametrize("encrypt", ["", "not base64!", base64.b64encode(b"x" * 17).decode()])
def test_garbage_ciphertexts_are_refused(encrypt: str) -> None:
    with pytest.raises(WeChatCipherError):
        WeChatCipher(SAMPLE_KEY, SAMPLE_APPID).decrypt(encrypt)


def test_a_wrong_signature_is_refused() -> None:
    with pytest.raises(WeChatSignatureError):
        check_signature(
            "f464b24fc39322e44b38aa78f5edd27bd1441697", "AAAAA", "1714036504", "1514711492"
        )


def test_timestamps_more_than_a_minute_off_are_refused() -> None:
    """WeChat retries within ~15 s; a minute leaves room for clock skew and no more."""
    now = time.time()
    check_timestamp(str(int(now) - 55), now=now)
    check_timestamp(str(int(now) + 55), now=now)
    for stale in (str(int(now) - 90), str(int(now) + 90), str(int(now) - 290), "soon"):
        with pytest.raises(WeChatSignatureError):
            check_timestamp(stale, now=now)
