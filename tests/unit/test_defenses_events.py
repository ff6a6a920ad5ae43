"""The events on topic `detections` validate against schemas/detection.v1.json."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import orjson
from jsonschema import Draft202012Validator

from services.domain.detectors import Seen, screen
from services.tally.announce import event_bytes
from tests.unit.test_defenses_detectors import defenses

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "detection.v1.json").read_text("utf-8")
)
T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def row_of(detection_id: int, campaign_id: str, detection: Any) -> asyncpg.Record:
    """A detections row as the announcer reads it."""
    row = {
        "id": detection_id,
        "campaign_id": campaign_id,
        "rule": detection.rule.name,
        "kind": detection.rule.kind,
        "action": detection.rule.action,
        "subject": detection.subject,
        "window_start": detection.window_start,
        "window_end": detection.window_end,
        "ballots": len(detection.ballot_ids),
        "evidence": orjson.dumps(detection.evidence).decode(),
        "detected_at": T0,
    }
    return cast(asyncpg.Record, row)


def test_every_kind_of_detection_makes_a_valid_event() -> None:
    policy = defenses(
        {"kind": "fresh_voter"},
        {"kind": "identical_selections", "min_ballots": 2, "action": "hold"},
        {"kind": "candidate_burst", "min_votes": 2, "action": "reject"},
    )
    stream = [
        Seen(uuid.uuid4(), ("c01",), "203.0.113.0/24", T0 + timedelta(seconds=i), T0, T0)
        for i in range(3)
    ]
    found = screen(policy, [], stream).detections
    assert {d.rule.kind for d in found} == {
        "fresh_voter",
        "identical_selections",
        "candidate_burst",
    }
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for n, detection in enumerate(found, 1):
        event = orjson.loads(event_bytes(row_of(n, "zibo", detection)))
        assert list(validator.iter_errors(event)) == []
