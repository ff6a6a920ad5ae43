"""The manifests rehearsed as pods (tests/deploy/rehearsal): every overlay goes live by the
documented steps on one machine, survives losing an ingest and a tally pod under load with
exact totals, and each deliberate breakage of the manifests fails the rehearsal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .manifests import Manifest
from .paths import OPERATIONS_DOC
from .rehearsal.breakages import BREAKAGES
from .rehearsal.golive import STEPS, documented_blocks
from .rehearsal.pod import PodFailed
from .rehearsal.rehearsal import Rehearsal, RehearsalFailed


@pytest.mark.slow
def test_dev_overlay_goes_live_and_survives_losing_pods_under_load(
    rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    with Rehearsal(rendered["dev"], tmp_path) as rehearsal:
        rehearsal.run_golive()
        summary = rehearsal.drive_load_and_kill(rate=100, seconds=12, kill_after=4)
        timeline = "\n".join(f"{t:6.1f}s {what}" for t, what in rehearsal.timeline)
        assert summary["exit_code"] == 0, f"{summary}\n{timeline}"
        assert summary["differences"] == [], summary
        assert summary["lost"] == 0, summary
        assert summary["expected_counted"] == summary["published_counted"] > 500, summary
        rehearsal.raise_failures()


@pytest.mark.slow
def test_prod_overlay_goes_live(rendered: dict[str, list[Manifest]], tmp_path: Path) -> None:
    with Rehearsal(rendered["prod"], tmp_path) as rehearsal:
        rehearsal.run_golive()
        rehearsal.raise_failures()


@pytest.mark.slow
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_deliberate_breakage_fails_the_rehearsal(
    breakage: str, rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    breaks, reason = BREAKAGES[breakage]
    with (
        Rehearsal(breaks(rendered["dev"]), tmp_path, ready_timeout=20) as rehearsal,
        pytest.raises((RehearsalFailed, PodFailed), match=re.compile(reason, re.DOTALL)),
    ):
        rehearsal.run_golive()


def test_the_documented_go_live_steps_are_the_ones_the_rehearsal_runs() -> None:
    assert documented_blocks(OPERATIONS_DOC) == [step.block for step in STEPS]
