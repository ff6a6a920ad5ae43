"""`votestream recount` as an operator runs it, against a given database."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.system import REPO


def run_recount(dsn: str, campaign_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", "recount", campaign_id],
        env={**os.environ, "VOTESTREAM_DATABASE_URL": dsn},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
