"""Kiosk voter_refs: sealed to the server's key, opened only by it, for one campaign, and
never the same twice; a hash-style ref (what a thief could brute-force) is refused."""

from __future__ import annotations

import base64
import hashlib

import pytest

from services.domain.errors import MalformedError
from services.domain.voter_refs import (
    open_ref,
    parse_public_key,
    public_key_text,
    seal,
    server_sealing_key,
)

SERVER = server_sealing_key(b"pepper")
PUBLIC = parse_public_key(public_key_text(SERVER))


def test_the_server_opens_what_the_kiosk_sealed_for_that_campaign() -> None:
    ref = seal(PUBLIC, "zibo", "+8613800138000")
    assert open_ref(SERVER, "zibo", ref) == "+8613800138000"
    assert open_ref(SERVER, "zibo", seal(PUBLIC, "zibo", "kiosk-id:11010519491231002X")) == (
        "kiosk-id:11010519491231002X"
    )


def test_refs_of_one_voter_differ_each_time_and_do_not_show_the_number_or_its_kind() -> None:
    refs = {seal(PUBLIC, "zibo", "+8613800138000") for _ in range(20)}
    assert len(refs) == 20
    id_ref = seal(PUBLIC, "zibo", "kiosk-id:11010519491231002X")
    assert {len(r) for r in refs} == {len(id_ref)}  # padded: a phone looks like an ID number
    for ref in refs:
        assert "13800138000" not in ref
        assert hashlib.sha256(b"+8613800138000").hexdigest() not in ref


@pytest.mark.parametrize(
    "opener",
    [
        lambda ref: open_ref(SERVER, "another-campaign", ref),
        lambda ref: open_ref(server_sealing_key(b"another pepper"), "zibo", ref),
        lambda ref: open_ref(SERVER, "zibo", ref[:-4] + ("AAAA" if ref[-4:] != "AAAA" else "BBBB")),
    ],
    ids=["other campaign", "other server", "tampered"],
)
def test_a_ref_opens_for_no_other_campaign_or_server_and_not_once_tampered(opener: object) -> None:
    ref = seal(PUBLIC, "zibo", "+8613800138000")
    with pytest.raises(MalformedError) as refused:
        opener(ref)  # type: ignore[operator]
    assert refused.value.code == "bad_voter_ref"


@pytest.mark.parametrize(
    "ref",
    [
        hashlib.sha256(b"+8613800138000").hexdigest(),  # the old, brute-forceable kind
        "13800138000",
        "",
        "!!!",
        base64.urlsafe_b64encode(b"\x02" + bytes(96)).decode(),  # unknown version
    ],
)
def test_anything_but_a_sealed_identity_is_refused(ref: str) -> None:
    with pytest.raises(MalformedError) as refused:
        open_ref(SERVER, "zibo", ref)
    assert refused.value.code == "bad_voter_ref"


def test_the_server_key_follows_the_identity_key_and_only_the_public_half_is_shown() -> None:
    assert public_key_text(server_sealing_key(b"pepper")) == public_key_text(SERVER)
    assert public_key_text(server_sealing_key(b"other")) != public_key_text(SERVER)
    assert len(base64.b64decode(public_key_text(SERVER))) == 32
