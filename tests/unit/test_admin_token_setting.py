"""The admin token alone opens the admin API and the console: a short one is refused at start,
and the refusal never shows it."""

from __future__ import annotations

import secrets

import pytest

from services.domain.errors import SettingsError
from services.runtime.settings import Settings


def test_a_short_admin_token_stops_the_start_without_showing_it() -> None:
    with pytest.raises(SettingsError, match="VOTESTREAM_ADMIN_TOKEN") as refused:
        Settings.from_env({"VOTESTREAM_ADMIN_TOKEN": "letmein-2026"}, required=("admin_token",))
    assert "letmein" not in str(refused.value)


def test_a_generated_admin_token_is_taken() -> None:
    token = secrets.token_hex(32)  # what docs/OPERATIONS.md has the operator make
    settings = Settings.from_env({"VOTESTREAM_ADMIN_TOKEN": token}, required=("admin_token",))
    assert settings.admin_token == token
