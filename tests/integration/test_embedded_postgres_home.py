"""The embedded PostgreSQL starts from a private directory and leaves its modes alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import asyncpg
import pytest

from services.runtime.embedded import EmbeddedPostgres
from services.runtime.postgres_home import discard_cluster
from services.runtime.processes import free_port


def _modes(path: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in (path, *path.parents)}


@pytest.mark.skipif(os.geteuid() != 0, reason="as a normal user PostgreSQL runs as that user")
async def test_a_data_dir_in_a_private_directory_starts_without_loosening_any_parent(
    tmp_path: Path,
) -> None:
    private = tmp_path / "private clone"  # a space in the path, as a newcomer's may have
    private.mkdir(mode=0o700)
    before = _modes(private)
    postgres = EmbeddedPostgres(private / ".votestream" / "postgres", free_port())
    try:
        postgres.start()
        conn = await asyncpg.connect(postgres.dsn)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    finally:
        postgres.stop()
        after = _modes(private)
        discard_cluster(postgres.data_dir)
    assert after == before
