"""Voter keys: pseudonymous, stable, per campaign; identities normalised first."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.domain.errors import MalformedError
from services.domain.voters import (
    kiosk_identity,
    normalize_phone,
    voter_key,
    web_identity,
    wechat_identity,
)

KEY = b"pepper"


def test_a_voter_key_is_the_hmac_of_campaign_and_identity() -> None:
    expected = hmac.new(KEY, b"zibo:+8613800138000", hashlib.sha256).hexdigest()
    assert voter_key(KEY, "zibo", "+8613800138000") == expected


def test_voter_keys_differ_by_campaign_and_by_pepper_and_hide_the_identity() -> None:
    key = voter_key(KEY, "a", "wechat:openid-1")
    assert key != voter_key(KEY, "b", "wechat:openid-1")
    assert key != voter_key(b"other", "a", "wechat:openid-1")
    assert "openid" not in key and len(key) == 64


@pytest.mark.parametrize(
    "raw", ["13800138000", "+86 138 0013 8000", "+86-138-0013-8000", "(+86)13800138000"]
)
def test_mainland_numbers_are_normalised_to_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", ["12345", "phone", "+0123456789", ""])
def test_numbers_that_are_not_e164_are_refused(raw: str) -> None:
    with pytest.raises(MalformedError) as refused:
        normalize_phone(raw)
    assert refused.value.code == "bad_phone"


def test_a_verified_phone_is_the_identity_on_every_channel_else_the_channel_id() -> None:
    assert web_identity("sub-1", "13800138000") == "+8613800138000"
    assert web_identity("sub-1", None) == "web:sub-1"
    assert wechat_identity("o1") == "wechat:o1"


def test_a_kiosk_ref_must_be_a_sha256_and_is_lower_cased() -> None:
    ref = hashlib.sha256(b"110101199003074514").hexdigest()
    assert kiosk_identity(ref.upper()) == f"kiosk-id:{ref}"
    with pytest.raises(MalformedError):
        kiosk_identity("110101199003074514")
