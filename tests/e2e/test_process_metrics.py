"""Every running service shows its process (memory, CPU, fds) and Python on /metrics."""

from __future__ import annotations

import httpx
import pytest

from tests.support.system import System


@pytest.mark.parametrize("service", ["ingest", "tally", "publish"])
def test_each_service_exposes_process_and_platform_metrics(system: System, service: str) -> None:
    base = {"ingest": system.ingest, "tally": system.tally, "publish": system.publish}[service]
    exposition = httpx.get(f"{base}/metrics", timeout=10).text
    assert "votestream_" in exposition  # the service's own registry, not an empty page
    for family in ("process_resident_memory_bytes", "process_start_time_seconds", "python_info"):
        assert f"\n{family}" in exposition, f"{service} has no {family}"
