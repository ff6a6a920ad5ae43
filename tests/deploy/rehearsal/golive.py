"""The go-live steps of docs/OPERATIONS.md, in order, and how the rehearsal performs each.

The documentation's shell blocks under "Going live" must be exactly these commands; the
rehearsal runs the ones that need no cluster verbatim (the Secret is made by the very
commands an operator types, with `kubectl` answering `--dry-run=client`) and performs the
cluster's part of the others (see Rehearsal)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GOLIVE_HEADING = "## Going live"


@dataclass(frozen=True)
class Step:
    block: str  # the shell block, exactly as the documentation shows it
    rehearsed_by: str  # the Rehearsal method that performs it


SECRETS = """\
votestream keygen > votestream-secrets.env
cat >> votestream-secrets.env <<EOF
VOTESTREAM_ADMIN_TOKEN=$(openssl rand -hex 32)
VOTESTREAM_IDENTITY_KEY=$(openssl rand -hex 32)
VOTESTREAM_WEB_JWT_SECRET=$(openssl rand -hex 32)
VOTESTREAM_WEBHOOK_SECRET=$(openssl rand -hex 32)
EOF
kubectl create namespace votestream
kubectl -n votestream create secret generic votestream-secrets \\
  --from-env-file=votestream-secrets.env
grep '^# public key' votestream-secrets.env
rm votestream-secrets.env"""

STEPS = (
    Step(SECRETS, "create_secrets"),
    Step(
        "kubectl -n votestream delete job votestream-migrate --ignore-not-found\n"
        "kubectl apply -k deploy/k8s/overlays/prod",
        "apply",
    ),
    Step(
        "kubectl -n votestream wait kafka/votestream --for=condition=Ready --timeout=15m\n"
        "kubectl -n votestream wait cluster.postgresql.cnpg.io/votestream-db"
        " --for=condition=Ready --timeout=15m",
        "start_kafka_and_postgres",
    ),
    Step(
        "kubectl -n votestream wait job/votestream-migrate --for=condition=complete"
        " --timeout=10m\n"
        "kubectl -n votestream logs job/votestream-migrate",
        "run_jobs",
    ),
    Step(
        "kubectl -n votestream rollout status deploy/votestream-ingest --timeout=10m\n"
        "kubectl -n votestream rollout status deploy/votestream-tally --timeout=10m\n"
        "kubectl -n votestream rollout status deploy/votestream-publish --timeout=10m",
        "wait_ready",
    ),
    Step(
        "kubectl -n votestream exec deploy/votestream-publish -- votestream migrate --check",
        "check_schema",
    ),
    Step(
        'curl -fsS -X PUT "$INGEST/v1/admin/campaigns/$CAMPAIGN" \\\n'
        '  -H "Authorization: Bearer $ADMIN_TOKEN" -H "Content-Type: application/json" \\\n'
        "  --data-binary @campaign.json",
        "load_campaign",
    ),
)


def documented_blocks(doc: Path) -> list[str]:
    """The ```sh blocks of the go-live section, in order, without their list indent."""
    text = doc.read_text(encoding="utf-8")
    start = text.find(f"\n{GOLIVE_HEADING}\n")
    if start < 0:
        return []
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else None]
    return [_dedent(block) for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)]


def _dedent(block: str) -> str:
    lines = block.rstrip().splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(line[indent:] for line in lines)
