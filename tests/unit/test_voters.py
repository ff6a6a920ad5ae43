"""Voter keys: pseudonymous, stable, per campaign; identities normalised first; a kiosk's
identity (phone or resident ID number) is the same identity the web channel would give."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.domain.errors import MalformedError
from services.domain.voters import (
    check_kiosk_identity,
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


def test_a_verified_phone_is_the_identity_on_every_channel_else_the_channel_id() -> None:
    assert web_identity("sub-1", "13800138000") == "+8613800138000"
    assert web_identity("sub-1", "+86１3800138000") == "+8613800138000"
    assert web_identity("sub-1", None) == "web:sub-1"
    assert wechat_identity("o1") == "wechat:o1"
    assert normalize_phone("138 0013-8000") == "+8613800138000"


@pytest.mark.parametrize("typed", ["138 0013-8000", "+86１3800138000", "(+86) 13800138000"])
def test_a_phone_typed_at_a_kiosk_is_the_web_channels_identity(typed: str) -> None:
    assert kiosk_identity(typed) == web_identity("any-login", "+8613800138000")


def test_an_id_number_typed_at_a_kiosk_is_checked_and_canonical() -> None:
    assert kiosk_identity("11010519491231002x") == "kiosk-id:11010519491231002X"
    assert kiosk_identity("110105 19491231 002X") == "kiosk-id:11010519491231002X"
    with pytest.raises(MalformedError) as refused:
        kiosk_identity("110105194912310021")
    assert refused.value.code == "bad_id_check_digit"
    with pytest.raises(MalformedError) as not_either:
        kiosk_identity("hello!")
    assert not_either.value.code == "bad_phone"


@pytest.mark.parametrize(
    ("opened", "code"),
    [
        ("13800138000", "bad_voter_ref"),  # a phone, but not in E.164
        ("+86１3800138000", "bad_voter_ref"),  # look-alikes only fold at the kiosk's input
        ("kiosk-id:11010519491231002x", "bad_voter_ref"),
        ("kiosk-id:110105194912310021", "bad_id_check_digit"),
        ("wechat:o1", "bad_phone"),
    ],
)
def test_the_server_takes_an_opened_identity_only_in_canonical_form(opened: str, code: str) -> None:
    with pytest.raises(MalformedError) as refused:
        check_kiosk_identity(opened)
    assert refused.value.code == code
    assert check_kiosk_identity("+8613800138000") == "+8613800138000"
    assert check_kiosk_identity("kiosk-id:11010519491231002X") == "kiosk-id:11010519491231002X"
