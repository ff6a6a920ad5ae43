"""A real Prometheus (the Debian `prometheus` binary) scraping a running votestream every
second, with the labels the Kubernetes ServiceMonitor gives (job, namespace, pod)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.runtime.processes import free_port
from tests.deploy.tools import require_tool
from tests.support.system import System
from tests.support.waiting import eventually

NAMESPACE = "votestream-e2e"  # what the dashboard's namespace variable should offer


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    def query(self, promql: str) -> dict[str, Any]:
        """The API's answer to an instant query: {"status", "data": {"resultType", "result"}}."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        answer: dict[str, Any] = response.json()
        return answer

    def label_values(self, label: str, metric: str) -> list[str]:
        response = httpx.get(
            f"{self.url}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=10
        )
        values: list[str] = response.json()["data"]
        return values


def scrape_config(system: System) -> dict[str, Any]:
    targets = {"ingest": system.ingest, "tally": system.tally, "publish": system.publish}
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": f"votestream-{name}",
                "static_configs": [
                    {
                        "targets": [base.removeprefix("http://")],
                        "labels": {"namespace": NAMESPACE, "pod": f"votestream-{name}-0"},
                    }
                ],
            }
            for name, base in targets.items()
        ],
    }


@contextmanager
def running_prometheus(system: System, workdir: Path) -> Iterator[Prometheus]:
    binary = require_tool("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(system)), encoding="utf-8")
    address = f"127.0.0.1:{free_port()}"
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}"]
    argv += [f"--web.listen-address={address}", "--log.level=warn"]
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    prometheus = Prometheus(f"http://{address}", log)
    try:
        eventually(lambda: _ready(proc, prometheus), timeout=60, what="Prometheus ready")
        yield prometheus
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _ready(proc: subprocess.Popen[bytes], prometheus: Prometheus) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"prometheus exited: {prometheus.log.read_text()[-2000:]}")
    try:
        return httpx.get(f"{prometheus.url}/-/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
