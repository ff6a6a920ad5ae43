"""`votestream keygen`: a signing key exactly as VOTESTREAM_SIGNING_KEY takes it, and its
public key as GET /v1/publish/public-key shows it (tests/integration/test_service_startup.py
checks the running publisher)."""

from __future__ import annotations

import base64
import subprocess
import sys

import orjson

from services.publish.signing import load_signing_key, public_key_text
from services.runtime.settings import Settings
from tests.support.system import REPO


def keygen(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services", "keygen", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def env_lines(output: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in output.splitlines() if not line.startswith("#"))
    return dict(pairs)


def test_keygen_prints_an_env_line_the_settings_take_and_the_public_key_of_that_key() -> None:
    output = keygen()
    lines = output.splitlines()
    assert len(lines) == 2, output
    variables = env_lines(output)
    assert list(variables) == ["VOTESTREAM_SIGNING_KEY"]
    settings = Settings.from_env(variables, required=("signing_key",))
    assert len(base64.b64decode(settings.signing_key)) == 32
    shown = lines[1].rsplit(" ", 1)[1]
    assert lines[1].startswith("# public key")
    assert shown == public_key_text(load_signing_key(settings.signing_key))


def test_keygen_json_names_both_keys_and_every_run_makes_a_new_key() -> None:
    first, second = (
        orjson.loads(keygen("--format", "json")),
        orjson.loads(keygen("--format", "json")),
    )
    assert first["algorithm"] == "Ed25519"
    assert first["public_key"] == public_key_text(load_signing_key(first["signing_key"]))
    assert len(base64.b64decode(first["public_key"])) == 32
    assert first["signing_key"] != second["signing_key"]
