"""Look-alike phone stuffers beside real voters, on the running system: one phone spelled in
fullwidth, Arabic-Indic, Devanagari ... digits logs in via OTP and votes again and again, next
to forged WeChat pushes; together they add no ballot beyond that phone's one genuine ballot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.system import REPO, System


def test_look_alike_spellings_of_one_phone_add_no_second_ballot(
    system: System, tmp_path: Path
) -> None:
    cid = system.new_campaign(limit={"per_voter": 1, "period": "campaign"})["id"]
    out = tmp_path / "summary.json"
    argv = [sys.executable, "-m", "services", "loadgen", "--campaign", cid, "--quiet"]
    argv += ["--channels", "web,wechat,kiosk", "--rate", "30", "--duration", "5s"]
    argv += ["--stuffers", "forged-wechat,lookalike-phone", "--stuff-rate", "3"]
    argv += ["--duplicate-rate", "0.1", "--invalid-rate", "0", "--json", str(out)]
    done = subprocess.run(
        argv, env=system.env, capture_output=True, text=True, timeout=240, cwd=REPO
    )
    summary = json.loads(out.read_text()) if out.exists() else {}
    assert done.returncode == 0, done.stdout + done.stderr
    lookalike = summary["stuffers"]["lookalike-phone"]
    assert lookalike["sent"] >= 5 and lookalike["taken"] == 0 and lookalike["errors"] == 0
    assert lookalike["refused"] == lookalike["sent"], lookalike
    assert summary["stuffers"]["forged-wechat"]["taken"] == 0
    # published == the real voters' own count + the stuffer phone's one genuine ballot
    real = summary["expected_counted"]
    assert summary["published_counted"] == real and summary["differences"] == []
    published = httpx.get(f"{system.publish}/v1/campaigns/{cid}/results", timeout=5).json()
    assert published["ballots_counted"] == real
