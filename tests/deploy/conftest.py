"""Fixtures shared by the deploy tests: rendered overlays, once per session."""

import pytest

from .manifests import Manifest, render
from .paths import OVERLAYS, overlay_dir


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Manifest]]:
    return {name: render(overlay_dir(name)) for name in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    docs: list[Manifest] = rendered[request.param]
    return docs
