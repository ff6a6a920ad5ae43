"""The `ballots` codec against its contract, schemas/ballot.v1.json: what ingest writes is
valid, what the tally reads back is what was written, and what the schema refuses the decoder
refuses too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from schemas.events import EventDecodeError, decode_event, encode_ballot, encode_cutoff
from services.domain.ballot import Ballot, Cutoff

SCHEMA = json.loads(resources.files("schemas").joinpath("ballot.v1.json").read_text())
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; RFC 3339 needs the T and
    # an offset, which fromisoformat alone would not insist on.
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return "T" in value.upper() and parsed.tzinfo is not None


VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FORMATS)

times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
metas = st.fixed_dictionaries(
    {},
    optional={
        "device_id": st.text(min_size=1, max_size=20),
        "ip_prefix": st.sampled_from(["203.0.113.0/24", "2001:db8::/64"]),
        "batch_id": st.uuids().map(str),
    },
)
ballots = st.builds(
    Ballot,
    ballot_id=st.uuids(),
    campaign_id=st.text(
        st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=64
    ),
    channel=st.sampled_from(["web", "wechat", "kiosk"]),
    voter_key=st.binary(min_size=32, max_size=32).map(bytes.hex),
    selections=st.lists(st.text(min_size=1, max_size=8), max_size=30, unique=True).map(tuple),
    cast_at=times,
    received_at=times,
    meta=metas,
)


@given(ballots)
def test_every_encoded_ballot_is_valid_ballot_v1_and_decodes_to_itself(ballot: Ballot) -> None:
    data = encode_ballot(ballot)
    VALIDATOR.validate(orjson.loads(data))
    assert decode_event(data) == ballot


@given(st.text(min_size=1, max_size=64), times)
def test_every_encoded_cutoff_is_valid_ballot_v1_and_decodes_to_itself(
    campaign_id: str, written_at: datetime
) -> None:
    data = encode_cutoff(Cutoff(campaign_id, written_at))
    VALIDATOR.validate(orjson.loads(data))
    assert decode_event(data) == Cutoff(campaign_id, written_at)


def _valid() -> dict[str, Any]:
    ballot = Ballot(
        UUID(int=1), "c1", "web", "ab" * 32, ("c01",), datetime.now(UTC), datetime.now(UTC)
    )
    doc: dict[str, Any] = orjson.loads(encode_ballot(ballot))
    return doc


@pytest.mark.parametrize(
    "breakage",
    [
        {"v": 2},
        {"kind": "vote"},
        {"ballot_id": "not-a-uuid"},
        {"cast_at": "yesterday"},
        {"channel": "sms"},
        {"ballot_id": None},
    ],
    ids=["version", "kind", "ballot_id", "cast_at", "channel", "missing"],
)
def test_what_the_schema_refuses_the_decoder_refuses(breakage: dict[str, Any]) -> None:
    doc = {**_valid(), **breakage}
    doc = {k: v for k, v in doc.items() if v is not None}
    assert not VALIDATOR.is_valid(doc)
    with pytest.raises(EventDecodeError):
        decode_event(orjson.dumps(doc))


@pytest.mark.parametrize("data", [b"[1, 2]", b"7", b'"ballot"', b"null"])
def test_valid_json_that_is_not_an_object_is_an_undecodable_event(data: bytes) -> None:
    # the tally keeps undecodable records for audit and goes on; anything else stops it
    with pytest.raises(EventDecodeError):
        decode_event(data)
