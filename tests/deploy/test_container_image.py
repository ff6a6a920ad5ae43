"""The Dockerfile builds the image the manifests run, as the user the pods expect."""

import re

from .manifests import Manifest, by_kind
from .paths import REPO_ROOT
from .tools import require_tool, run

DOCKERFILE = REPO_ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_image_is_python_slim_with_the_votestream_entrypoint() -> None:
    steps = instructions()
    bases = [arg.split()[0] for op, arg in steps if op == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases)
    assert ("ENTRYPOINT", '["votestream"]') in steps
    assert any(op == "RUN" and "pip install" in arg for op, arg in steps)


def test_image_runs_as_the_uid_the_pods_require(overlay: list[Manifest]) -> None:
    users = [arg for op, arg in instructions() if op == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and uid != "0"
    for deployment in by_kind(overlay, "Deployment"):
        context = deployment["spec"]["template"]["spec"]["securityContext"]
        assert str(context["runAsUser"]) == uid


def test_image_exposes_the_service_ports() -> None:
    exposed = {arg for op, arg in instructions() if op == "EXPOSE"}
    assert exposed == {"8080 8081 8082"}


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", ".votestream"} <= ignored


def test_install_script_is_valid_bash_and_names_its_tools() -> None:
    script = REPO_ROOT / ".ci" / "install-ops-tools"
    result = run([require_tool("bash"), "-n", str(script)])
    assert result.returncode == 0, result.stderr
    text = script.read_text(encoding="utf-8")
    assert re.search(r"apt_install prometheus", text)
    assert "kustomize" in text
