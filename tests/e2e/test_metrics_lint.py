"""`promtool check metrics` finds nothing to say about any service's /metrics."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.deploy.tools import require_tool
from tests.e2e.web_traffic import drive_web_traffic
from tests.support.system import System


def lint(exposition: str) -> str:
    """promtool's complaints, empty when there are none."""
    result = subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = (result.stdout + result.stderr).strip()
    assert (result.returncode == 0) == (not complaints), complaints
    return complaints


@pytest.fixture(scope="module")
def expositions(system: System) -> dict[str, str]:
    """Each service's /metrics after traffic, so that labelled series exist."""
    drive_web_traffic(system, system.new_campaign(), voters=4)
    bases = {"ingest": system.ingest, "tally": system.tally, "publish": system.publish}
    return {name: httpx.get(f"{base}/metrics", timeout=10).text for name, base in bases.items()}


@pytest.mark.parametrize("service", ["ingest", "tally", "publish"])
def test_metrics_pass_promtool(expositions: dict[str, str], service: str) -> None:
    assert "votestream_" in expositions[service]
    assert lint(expositions[service]) == ""


def test_promtool_catches_a_badly_named_counter() -> None:
    bad = "# HELP votestream_x_count c\n# TYPE votestream_x_count counter\nvotestream_x_count 1\n"
    assert '"_total" suffix' in lint(bad)
