"""Snapshots: contents from counts, RFC 8785 canonical hash, chain fields, Ed25519."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.domain.campaign import Campaign, parse_campaign
from services.domain.snapshot import Counts, canonical_bytes, contents, seal, verify

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
AS_OF = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def campaign() -> Campaign:
    return parse_campaign(
        {
            "id": "snap",
            "title": "t",
            "organizer": "o",
            "question": "q",
            "timezone": "UTC",
            "opens_at": "2026-05-01T00:00:00Z",
            "closes_at": "2026-05-02T00:00:00Z",
            "top_n": 1,
            "candidates": [
                {"id": "c1", "title": "一", "unit": "u"},
                {"id": "c2", "title": "二", "unit": "u"},
                {"id": "c3", "title": "三", "unit": "u"},
            ],
        }
    )


COUNTS = Counts(
    votes={("c1", "web"): 3, ("c2", "web"): 2, ("c2", "kiosk"): 1, ("c3", "wechat"): 1},
    ballots_counted=7,
    ballots_rejected={"limit_exceeded": 2, "campaign_closed": 1},
)


def test_contents_sum_channels_rank_and_mark_the_tie_at_the_cut() -> None:
    body = contents(campaign(), COUNTS)
    votes = {c["id"]: (c["votes"], c["rank"]) for c in body["candidates"]}
    assert votes == {"c1": (3, 1), "c2": (3, 1), "c3": (1, 3)}
    assert body["top"] == ["c1", "c2"] and body["tie_at_cutoff"]
    assert body["candidates"][1]["by_channel"] == {"web": 2, "wechat": 0, "kiosk": 1}
    assert list(body["ballots_rejected"]) == ["campaign_closed", "limit_exceeded"]


def test_the_hash_is_sha256_of_the_rfc8785_bytes_without_hash_and_signature() -> None:
    snapshot = seal(
        contents(campaign(), COUNTS),
        seq=1,
        as_of=AS_OF,
        final=False,
        prev_hash=None,
        signing_key=None,
    )
    unsigned = {k: v for k, v in snapshot.items() if k not in ("hash", "signature")}
    # RFC 8785 for this data: sorted keys, no spaces, UTF-8 as is
    by_hand = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_bytes(snapshot) == by_hand.encode()
    assert snapshot["hash"] == hashlib.sha256(by_hand.encode()).hexdigest()
    assert snapshot["signature"] is None and snapshot["prev_hash"] is None


def test_a_signed_snapshot_verifies_and_any_change_is_caught() -> None:
    first = seal(
        contents(campaign(), COUNTS),
        seq=1,
        as_of=AS_OF,
        final=False,
        prev_hash=None,
        signing_key=KEY,
    )
    final = seal(
        contents(campaign(), COUNTS),
        seq=2,
        as_of=AS_OF,
        final=True,
        prev_hash=first["hash"],
        signing_key=KEY,
    )
    public = KEY.public_key()
    assert verify(final, public) == [] and final["prev_hash"] == first["hash"]
    raw = base64.b64decode(final["signature"])
    public.verify(raw, canonical_bytes(final))  # raises if invalid
    tampered = {**final, "ballots_counted": 8}
    assert verify(tampered, public) == [
        "hash does not match the canonical bytes",
        "signature does not verify with the public key",
    ]


def test_a_signature_from_another_key_and_an_unsigned_final_are_refused() -> None:
    other = Ed25519PrivateKey.generate()
    final = seal(
        contents(campaign(), COUNTS),
        seq=1,
        as_of=AS_OF,
        final=True,
        prev_hash=None,
        signing_key=other,
    )
    assert verify(final, KEY.public_key()) == ["signature does not verify with the public key"]
    unsigned = seal(
        contents(campaign(), COUNTS),
        seq=1,
        as_of=AS_OF,
        final=True,
        prev_hash=None,
        signing_key=None,
    )
    assert verify(unsigned, KEY.public_key()) == ["a final snapshot must be signed"]


@pytest.mark.parametrize(
    ("number", "text"), [(1.5, "1.5"), (1e21, "1e+21"), (-0.0, "0"), (100.0, "100")]
)
def test_canonical_bytes_write_numbers_as_rfc8785_says(number: float, text: str) -> None:
    assert canonical_bytes({"n": number}).decode() == f'{{"n":{text}}}'


def test_a_snapshot_carries_the_hash_of_its_campaign_inside_the_signed_bytes() -> None:
    snapshot = seal(
        contents(campaign(), COUNTS),
        seq=1,
        as_of=AS_OF,
        final=True,
        prev_hash=None,
        signing_key=KEY,
    )
    definition = {k: v for k, v in campaign().to_dict().items() if k != "defenses"}
    expected = hashlib.sha256(rfc8785.dumps(definition)).hexdigest()
    assert snapshot["campaign_hash"] == expected
    assert verify(snapshot, KEY.public_key(), campaign()) == []
    forged = {**snapshot, "campaign_hash": "0" * 64}
    assert verify(forged, KEY.public_key()) == [
        "hash does not match the canonical bytes",
        "signature does not verify with the public key",
    ]


def test_verify_fails_when_the_campaign_given_is_not_the_one_counted_under() -> None:
    snapshot = seal(
        contents(campaign(), COUNTS),
        seq=1,
        as_of=AS_OF,
        final=True,
        prev_hash=None,
        signing_key=KEY,
    )
    other = parse_campaign({**campaign().to_dict(), "top_n": 2})
    problems = verify(snapshot, KEY.public_key(), other)
    assert len(problems) == 1 and problems[0].startswith("campaign_hash ")


def test_a_chain_across_a_wording_edit_still_verifies_link_by_link() -> None:
    renamed = parse_campaign({**campaign().to_dict(), "title": "a clearer title"})
    first = seal(
        contents(campaign(), COUNTS),
        seq=1,
        as_of=AS_OF,
        final=False,
        prev_hash=None,
        signing_key=KEY,
    )
    second = seal(
        contents(renamed, COUNTS),
        seq=2,
        as_of=AS_OF,
        final=True,
        prev_hash=first["hash"],
        signing_key=KEY,
    )
    assert verify(first, KEY.public_key(), campaign()) == []
    assert verify(second, KEY.public_key(), renamed) == []
    assert second["prev_hash"] == first["hash"]
    assert first["campaign_hash"] != second["campaign_hash"]  # each names its own definition
