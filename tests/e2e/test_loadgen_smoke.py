"""`votestream loadgen` against the running system: a short run over web, WeChat and kiosk
whose published totals must equal the loadgen's own count (totals, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.system import System


def test_a_short_loadgen_run_publishes_exactly_its_own_count(
    system: System, tmp_path: Path
) -> None:
    campaign = system.new_campaign()
    out = tmp_path / "summary.json"
    argv = [sys.executable, "-m", "services", "loadgen", "--campaign", campaign["id"]]
    argv += ["--rate", "60", "--duration", "3s", "--quiet", "--json", str(out)]
    argv += ["--channels", "web,wechat,kiosk"]
    argv += ["--duplicate-rate", "0.2", "--repeat-rate", "0.2", "--invalid-rate", "0.1"]
    done = subprocess.run(argv, env=system.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(out.read_text())
    assert summary["ok"] and summary["checked"] and summary["differences"] == []
    assert summary["lost"] == 0 and summary["unexpected"] == {}
    assert summary["sent"] >= 100  # retries, repeats and junk make it more than the voters
    assert 0 < summary["expected_counted"] == summary["published_counted"] < summary["sent"]
    assert set(summary["latency_ms"]) == {"web", "wechat", "kiosk"}
    assert "RESULT    OK" in done.stdout
