"""Where the artifacts and the shared schemas live, derived from this file's place."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
DASHBOARD = DEPLOY / "grafana" / "votestream.json"
RULES = DEPLOY / "prometheus" / "votestream.rules.yaml"
RULES_TESTS = DEPLOY / "prometheus" / "votestream.rules.test.yaml"
OPERATIONS_DOC = REPO_ROOT / "docs" / "OPERATIONS.md"
# shared/ sits beside the checkout, on developer machines and in CI alike.
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
CRD_SCHEMAS = SHARED_SCHEMAS / "crds"
GRAFANA_SCHEMAS = SHARED_SCHEMAS / "grafana"


def overlay_dir(name: str) -> Path:
    return K8S / "overlays" / name
