"""Snapshots: RFC 8785 canonical bytes, the hash chain, and Ed25519 signatures that an
independent implementation (libsodium, via PyNaCl) accepts."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft202012Validator
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from services.domain.campaign import Campaign, parse_campaign
from services.domain.snapshot import Counts, canonical_bytes, contents, seal, verify

NOW = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)
SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "snapshot.v1.json").read_text())


def campaign(top_n: int = 2, n: int = 4) -> Campaign:
    return parse_campaign(
        {
            "id": "c",
            "title": "改革",
            "organizer": "o",
            "question": "q",
            "timezone": "Asia/Shanghai",
            "opens_at": (NOW - timedelta(days=1)).isoformat(),
            "closes_at": (NOW + timedelta(days=1)).isoformat(),
            "top_n": top_n,
            "candidates": [
                {"id": f"c{i}", "title": f"候选{i}", "unit": "区"} for i in range(1, n + 1)
            ],
        }
    )


def snapshot(
    votes: dict[str, int], seq: int = 1, prev: str | None = None, **kw: Any
) -> dict[str, Any]:
    counts = Counts({(c, "web"): v for c, v in votes.items()}, sum(votes.values()), {})
    key = kw.pop("key", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    return seal(
        contents(campaign(**kw), counts),
        seq=seq,
        as_of=NOW,
        final=False,
        prev_hash=prev,
        signing_key=key,
    )


def test_canonical_bytes_follow_rfc_8785_whatever_the_key_order_or_number_spelling() -> None:
    a = {"seq": 1, "b": [1.0, "é"], "a": None, "hash": "x", "signature": "y"}
    b = {"a": None, "b": [1, "é"], "seq": 1}
    assert canonical_bytes(a) == canonical_bytes(b) == '{"a":null,"b":[1,"é"],"seq":1}'.encode()


def test_hash_is_sha256_of_the_canonical_bytes_without_hash_and_signature() -> None:
    s = snapshot({"c1": 3})
    unsigned = {k: v for k, v in s.items() if k not in ("hash", "signature")}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert s["hash"] == hashlib.sha256(text.encode()).hexdigest()  # plain ASCII keys: same as JCS


def test_any_change_to_a_field_breaks_the_hash() -> None:
    s = snapshot({"c1": 3, "c2": 1})
    assert verify(s, None) == []
    tampered = json.loads(json.dumps(s))
    tampered["candidates"][0]["votes"] += 1
    assert "hash does not match the canonical bytes" in verify(tampered, None)


def test_an_independent_ed25519_accepts_the_signature_and_refuses_a_forgery() -> None:
    seed = bytes(range(32))
    s = snapshot({"c1": 2}, key=Ed25519PrivateKey.from_private_bytes(seed))
    verify_key = SigningKey(seed).verify_key
    verify_key.verify(canonical_bytes(s), base64.b64decode(s["signature"]))
    forged = {**s, "ballots_counted": 99}
    with pytest.raises(BadSignatureError):
        verify_key.verify(canonical_bytes(forged), base64.b64decode(s["signature"]))
    other = VerifyKey(SigningKey(bytes(32)).verify_key.encode())
    with pytest.raises(BadSignatureError):
        other.verify(canonical_bytes(s), base64.b64decode(s["signature"]))


def test_links_chain_by_prev_hash() -> None:
    first = snapshot({"c1": 1})
    second = snapshot({"c1": 2}, seq=2, prev=first["hash"])
    assert (first["prev_hash"], second["prev_hash"]) == (None, first["hash"])
    assert second["hash"] != first["hash"]


def test_a_final_without_signature_is_refused() -> None:
    s = snapshot({"c1": 1}, key=None)
    assert verify(s, None) == []
    assert verify({**s, "final": True}, None) != []


def test_ranking_ties_at_the_cutoff_bring_every_tied_candidate_into_top() -> None:
    s = snapshot({"c1": 5, "c2": 3, "c3": 3, "c4": 1})
    assert [(c["id"], c["rank"]) for c in s["candidates"]] == [
        ("c1", 1),
        ("c2", 2),
        ("c3", 2),
        ("c4", 4),
    ]
    assert s["top"] == ["c1", "c2", "c3"] and s["tie_at_cutoff"] is True


def test_a_tie_inside_the_top_is_no_tie_at_the_cutoff() -> None:
    s = snapshot({"c1": 4, "c2": 4, "c3": 1, "c4": 0})
    assert [c["rank"] for c in s["candidates"]] == [1, 1, 3, 4]
    assert s["top"] == ["c1", "c2"] and s["tie_at_cutoff"] is False


def test_a_tie_below_the_cutoff_is_no_tie_at_the_cutoff() -> None:
    s = snapshot({"c1": 4, "c2": 3, "c3": 1, "c4": 1})
    assert [c["rank"] for c in s["candidates"]] == [1, 2, 3, 3]
    assert s["top"] == ["c1", "c2"] and s["tie_at_cutoff"] is False


def test_no_votes_at_all_ties_everyone_at_rank_one() -> None:
    s = snapshot({})
    assert {c["rank"] for c in s["candidates"]} == {1}
    assert len(s["top"]) == 4 and s["tie_at_cutoff"] is True


def test_emitted_snapshots_match_the_published_schema() -> None:
    validator = Draft202012Validator(SCHEMA)
    first = snapshot({"c1": 1, "c2": 1})
    validator.validate(first)
    validator.validate(snapshot({"c2": 7}, seq=2, prev=first["hash"]))
