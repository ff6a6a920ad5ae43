"""`votestream verify FILE` and the dozen lines of Python in docs/VERIFYING.md, on real files."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.domain.snapshot import Counts, contents, seal
from tests.support.campaigns import make_campaign

REPO = Path(__file__).resolve().parents[2]
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def final_snapshot(key: Ed25519PrivateKey | None = KEY) -> dict[str, Any]:
    body = {"campaign_id": "zibo", "ballots_counted": 3, "candidates": [], "top": []}
    return seal(
        {**body, "ballots_rejected": {}, "tie_at_cutoff": False},
        seq=7,
        as_of=datetime(2021, 6, 1, tzinfo=UTC),
        final=True,
        prev_hash="a" * 64,
        signing_key=key,
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", "verify", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


@pytest.fixture
def final_file(tmp_path: Path) -> Path:
    path = tmp_path / "final.json"
    path.write_text(json.dumps(final_snapshot(), ensure_ascii=False), "utf-8")
    return path


def test_an_intact_final_verifies(final_file: Path, tmp_path: Path) -> None:
    done = run(str(final_file), "--public-key", PUBLIC)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK final #7 of zibo: hash ") and "signature valid" in done.stdout
    key_json = tmp_path / "key.json"
    key_json.write_text(json.dumps({"algorithm": "Ed25519", "public_key": PUBLIC}))
    assert run(str(final_file), "--public-key", str(key_json)).returncode == 0


def test_a_changed_count_or_a_wrong_key_fails(final_file: Path, tmp_path: Path) -> None:
    tampered = json.loads(final_file.read_text("utf-8"))
    tampered["ballots_counted"] += 1
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(tampered))
    done = run(str(changed), "--public-key", PUBLIC)
    assert done.returncode == 1 and "FAIL hash does not match" in done.stderr
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    done = run(str(final_file), "--public-key", base64.b64encode(other).decode())
    assert done.returncode == 1 and "FAIL signature does not verify" in done.stderr


def test_an_unsigned_final_fails(tmp_path: Path) -> None:
    path = tmp_path / "unsigned.json"
    path.write_text(json.dumps(final_snapshot(key=None)))
    done = run(str(path), "--public-key", PUBLIC)
    assert done.returncode == 1 and "must be signed" in done.stderr


@pytest.mark.parametrize(
    ("content", "key", "message"),
    [
        ("not json", PUBLIC, "is not JSON"),
        ("[1, 2]", PUBLIC, "no snapshot object"),
        ('{"seq": 1}', PUBLIC, "is not a snapshot"),
        (None, "not-base64!", "not base64"),
        (None, base64.b64encode(b"short").decode(), "32 raw Ed25519 bytes"),
    ],
)
def test_what_cannot_be_checked_says_why_and_exits_2(
    final_file: Path, tmp_path: Path, content: str | None, key: str, message: str
) -> None:
    path = final_file
    if content is not None:
        path = tmp_path / "other.json"
        path.write_text(content)
    done = run(str(path), "--public-key", key)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_python_in_verifying_md_verifies_a_final(final_file: Path, tmp_path: Path) -> None:
    doc = (REPO / "docs" / "VERIFYING.md").read_text("utf-8")
    code = re.search(r"```python\n(.*?)```", doc, re.S)
    assert code is not None
    script = tmp_path / "verify.py"
    script.write_text(code.group(1))
    lines = [ln for ln in code.group(1).splitlines() if ln.strip()]
    assert len(lines) <= 12, "a dozen lines"
    done = subprocess.run(
        [sys.executable, str(script), str(final_file), PUBLIC],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("valid final 7 "), done.stderr
    forged = json.loads(final_file.read_text("utf-8")) | {"ballots_counted": 0}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "forged.json"), PUBLIC],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0


def test_the_campaign_counted_under_is_checked_against_a_definition_file(tmp_path: Path) -> None:
    campaign = make_campaign("zibo", now=datetime(2021, 6, 1, tzinfo=UTC))
    counts = Counts(votes={("c1", "web"): 2}, ballots_counted=2, ballots_rejected={})
    snapshot = seal(
        contents(campaign, counts),
        seq=1,
        as_of=datetime(2021, 6, 1, tzinfo=UTC),
        final=True,
        prev_hash=None,
        signing_key=KEY,
    )
    path = tmp_path / "final.json"
    path.write_text(json.dumps(snapshot), "utf-8")
    same = tmp_path / "campaign.json"
    same.write_text(json.dumps(campaign.to_dict()), "utf-8")
    done = run(str(path), "--public-key", PUBLIC, "--campaign", str(same))
    assert done.returncode == 0, done.stderr
    assert "campaign definition matches" in done.stdout
    changed = tmp_path / "changed.yaml"
    changed.write_text(json.dumps({**campaign.to_dict(), "top_n": 1}), "utf-8")
    done = run(str(path), "--public-key", PUBLIC, "--campaign", str(changed))
    assert done.returncode == 1
    assert "FAIL campaign_hash" in done.stderr and "not the hash of the campaign" in done.stderr
