"""Deliberate breakages of the rendered manifests, each of which must fail the rehearsal."""

from __future__ import annotations

import copy
from collections.abc import Callable

from ..manifests import Manifest, by_kind

Breakage = Callable[[list[Manifest]], list[Manifest]]


def loopback_bind(docs: list[Manifest]) -> list[Manifest]:
    """VOTESTREAM_HOST=127.0.0.1 wherever the manifests set the bind address."""
    broken = copy.deepcopy(docs)
    changed = 0
    for config in by_kind(broken, "ConfigMap"):
        if "VOTESTREAM_HOST" in config.get("data", {}):
            config["data"]["VOTESTREAM_HOST"] = "127.0.0.1"
            changed += 1
    for container in _containers(broken):
        for item in container.get("env", []):
            if item["name"] == "VOTESTREAM_HOST":
                item["value"] = "127.0.0.1"
                changed += 1
    if not changed:
        raise ValueError("no manifest sets VOTESTREAM_HOST: nothing to break")
    return broken


def no_migration_job(docs: list[Manifest]) -> list[Manifest]:
    """The manifests without the Job that runs `votestream migrate`."""
    kept = [d for d in docs if not (d["kind"] == "Job" and _runs_migrate(d))]
    if len(kept) == len(docs):
        raise ValueError("no Job runs `votestream migrate`: nothing to break")
    return copy.deepcopy(kept)


def wrong_probe_port(docs: list[Manifest]) -> list[Manifest]:
    """Ingest's readiness probe aimed at a port the container does not serve."""
    broken = copy.deepcopy(docs)
    for deployment in by_kind(broken, "Deployment"):
        if deployment["metadata"]["name"] == "votestream-ingest":
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            served = {p["containerPort"] for p in container["ports"]}
            container["readinessProbe"]["httpGet"]["port"] = max(served) + 1000
            return broken
    raise ValueError("no Deployment votestream-ingest: nothing to break")


# Each breakage and what the rehearsal's failure must say (so it fails for that reason).
BREAKAGES: dict[str, tuple[Breakage, str]] = {
    "loopback-bind": (loopback_bind, r"is refused; the container listens on 127\.0\.0\.1:\d+ only"),
    "no-migration-job": (no_migration_job, r"not ready within .*migrations pending"),
    "wrong-probe-port": (
        wrong_probe_port,
        r":9080 is refused; the container listens on 0\.0\.0\.0:8080",
    ),
}


def _runs_migrate(job: Manifest) -> bool:
    containers = job["spec"]["template"]["spec"]["containers"]
    return any("migrate" in [*c.get("command", []), *c.get("args", [])] for c in containers)


def _containers(docs: list[Manifest]) -> list[Manifest]:
    found: list[Manifest] = []
    for doc in by_kind(docs, "Deployment") + by_kind(docs, "Job"):
        found.extend(doc["spec"]["template"]["spec"]["containers"])
    return found
