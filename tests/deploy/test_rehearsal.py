"""The manifests rehearsed as pods (tests/deploy/rehearsal): every overlay goes live by the
documented steps on one machine, survives losing an ingest and a tally pod under load with
exact totals, and each deliberate breakage of the manifests fails the rehearsal."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

from services.domain.errors import SettingsError
from services.runtime.settings import Settings

from .manifests import Manifest, by_kind
from .paths import OPERATIONS_DOC, REPO_ROOT
from .rehearsal.breakages import BREAKAGES
from .rehearsal.golive import STEPS, documented_blocks
from .rehearsal.pod import PodFailed
from .rehearsal.pods import PodConfigError, Secrets, container_env, pod_templates, read_image
from .rehearsal.rehearsal import Rehearsal, RehearsalFailed

# Pods get network namespaces of their own, which only root can make (CI runs as root). As
# another user these are skipped, said in pytest's summary: run `sudo make test` for them.
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the rehearsal makes network namespaces: run as root"
)


@needs_root
@pytest.mark.slow
def test_dev_overlay_goes_live_and_survives_losing_pods_under_load(
    rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    with Rehearsal(rendered["dev"], tmp_path) as rehearsal:
        rehearsal.run_golive()
        summary = rehearsal.drive_load_and_kill(rate=100, seconds=12, kill_at=200)
        timeline = "\n".join(f"{t:6.1f}s {what}" for t, what in rehearsal.timeline)
        assert summary["exit_code"] == 0, f"{summary}\n{timeline}"
        assert summary["differences"] == [], summary
        assert summary["lost"] == 0, summary
        assert summary["expected_counted"] == summary["published_counted"] > 500, summary
        rehearsal.kubelet.raise_failures()


@needs_root
@pytest.mark.slow
def test_prod_overlay_goes_live(rendered: dict[str, list[Manifest]], tmp_path: Path) -> None:
    with Rehearsal(rendered["prod"], tmp_path) as rehearsal:
        rehearsal.run_golive()
        rehearsal.kubelet.raise_failures()


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_deliberate_breakage_fails_the_rehearsal(
    breakage: str, rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    breaks, reason = BREAKAGES[breakage]
    with (
        # Ready comes within a retry (5 s) of the migration; without one, 12 s shows it never does.
        Rehearsal(breaks(rendered["dev"]), tmp_path, ready_timeout=12) as rehearsal,
        pytest.raises((RehearsalFailed, PodFailed), match=re.compile(reason, re.DOTALL)),
    ):
        rehearsal.run_golive()


def test_the_documented_go_live_steps_are_the_ones_the_rehearsal_runs() -> None:
    assert documented_blocks(OPERATIONS_DOC) == [step.block for step in STEPS]


def placeholder_secrets(docs: list[Manifest]) -> Secrets:
    """Every Secret the pods reference, with values of the right form."""
    made: Secrets = {
        "votestream-secrets": {
            "VOTESTREAM_SIGNING_KEY": base64.b64encode(bytes(32)).decode(),
            "VOTESTREAM_ADMIN_TOKEN": "a" * 64,
            "VOTESTREAM_IDENTITY_KEY": "b" * 64,
            "VOTESTREAM_WEB_JWT_SECRET": "c" * 64,
            "VOTESTREAM_WEBHOOK_SECRET": "d" * 64,
        },
        "votestream-db-app": {"uri": "postgresql://app:pw@votestream-db-rw:5432/app"},
        "votestream-cluster-ca-cert": {"ca.crt": "placeholder\n"},
    }
    for user in by_kind(docs, "KafkaUser"):
        made[user["metadata"]["name"]] = {"password": "placeholder"}
    return made


def test_every_pods_environment_is_accepted_by_the_settings(overlay: list[Manifest]) -> None:
    # The kubelet adds NAME_PORT=tcp://... for each Service unless the pod turns links off;
    # Service votestream-publish then sets VOTESTREAM_PUBLISH_PORT, which is a setting.
    image = read_image(REPO_ROOT / "Dockerfile")
    for template in pod_templates(overlay, placeholder_secrets(overlay), image):
        try:
            Settings.from_env(template.env)
        except SettingsError as exc:
            pytest.fail(f"{template.owner}: {exc}")


def test_a_missing_secret_key_stops_the_pod_unless_optional() -> None:
    container = {
        "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a"}}},
            {
                "name": "B",
                "valueFrom": {"secretKeyRef": {"name": "s", "key": "b", "optional": True}},
            },
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "m", "key": "c"}}},
            {"name": "D", "value": "$(C)-d"},
        ]
    }
    env = container_env("Deployment/x", container, {"m": {"c": "3"}}, {"s": {"a": "1"}})
    assert env == {"A": "1", "C": "3", "D": "3-d"}
    with pytest.raises(PodConfigError, match="Secret s has no key a"):
        container_env("Deployment/x", container, {"m": {"c": "3"}}, {"s": {}})
