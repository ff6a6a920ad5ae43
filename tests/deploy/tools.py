"""The external tools the deploy tests run: found, or a failure that says how to get them."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL_HINT = "run `bash .ci/install-ops-tools` (as root) to install it"


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails the test, it never skips it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: {INSTALL_HINT}", pytrace=False)
    return path


def run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, encoding="utf-8", timeout=120, check=False
    )


def kustomize_command() -> list[str]:
    """A kustomize v4+ renderer: standalone `kustomize`, else the one built into kubectl."""
    standalone = shutil.which("kustomize")
    if standalone is not None:
        return [standalone, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(f"neither `kustomize` nor `kubectl` is on PATH: {INSTALL_HINT}", pytrace=False)
    version = run([kubectl, "version", "--client"]).stdout
    match = re.search(r"Kustomize Version: v(\d+)", version)
    # kubectl before 1.21 bundles kustomize v2, which cannot read these kustomizations.
    if match is None or int(match.group(1)) < 4:
        pytest.fail(f"`kubectl` has no kustomize v4+ ({version.strip()!r}): {INSTALL_HINT}")
    return [kubectl, "kustomize"]
