"""Alert rules: promtool accepts them, unit tests fire each alert, runbooks exist."""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .manifests import render
from .paths import K8S, REPO_ROOT, RULES, RULES_TESTS
from .tools import require_tool, run

REQUIRED_SIGNALS = {
    "votestream_tally_consumer_lag",
    "votestream_tally_oldest_uncounted_age_seconds",
    "votestream_ingest_requests_total",
    "votestream_ingest_rejections_total",
    "votestream_publish_snapshot_age_seconds",
    "votestream_publish_webhook_deliveries_total",
    "votestream_kiosk_chain_breaks_total",
    "votestream_tally_detections_total",
    "kafka_consumergroup_lag",
}
# Where runbook_url points: the repository's docs/RUNBOOK.md, one section per alert.
RUNBOOK = REPO_ROOT / "docs" / "RUNBOOK.md"
RUNBOOK_BASE = "https://github.com/votestream/votestream/blob/main/docs/RUNBOOK.md#"
# The services whose disappearance must page whether or not ballots are arriving.
ALWAYS_WATCHED = ("ingest", "tally", "publish")


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives headings: lower case, punctuation dropped, spaces to -."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_promtool_accepts_the_rules() -> None:
    result = run([require_tool("promtool"), "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run(
        [require_tool("promtool"), "test", "rules", RULES_TESTS.name], cwd=RULES_TESTS.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rejects_a_rule_with_broken_promql(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rules.yaml"
    broken.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Broken\n"
        "        expr: sum by (namespace (votestream_tally_consumer_lag)\n",
        encoding="utf-8",
    )
    result = run([require_tool("promtool"), "check", "rules", str(broken)])
    assert result.returncode != 0


def test_promtool_unit_tests_fail_on_a_wrong_expectation(tmp_path: Path) -> None:
    (tmp_path / RULES.name).write_text(RULES.read_text(encoding="utf-8"), encoding="utf-8")
    right = RULES_TESTS.read_text(encoding="utf-8")
    wrong = right.replace("Tally is 60k ballots", "Tally is 61k ballots")
    assert wrong != right
    (tmp_path / RULES_TESTS.name).write_text(wrong, encoding="utf-8")
    result = run([require_tool("promtool"), "test", "rules", RULES_TESTS.name], cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(RULES_TESTS.read_text(encoding="utf-8"))["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names == fired
    assert names == quiet


def test_the_alerts_cover_every_signal_the_issue_names() -> None:
    exprs = " ".join(rule["expr"] for rule in alerts())
    missing = {metric for metric in REQUIRED_SIGNALS if metric not in exprs}
    assert not missing


def test_every_alert_has_severity_summary_and_a_runbook_url_to_its_section() -> None:
    anchors = github_anchors(RUNBOOK.read_text(encoding="utf-8"))
    for rule in alerts():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert "runbook" not in rule["annotations"], "the annotation is runbook_url"
        url = urlsplit(rule["annotations"]["runbook_url"])
        assert url.scheme == "https" and url.netloc, rule["alert"]
        assert rule["annotations"]["runbook_url"].startswith(RUNBOOK_BASE), rule["alert"]
        assert url.fragment in anchors, f"{rule['alert']}: no section #{url.fragment} in {RUNBOOK}"


def test_each_service_pages_when_it_is_gone_not_only_while_counting() -> None:
    services = {d["metadata"]["name"] for d in render(K8S / "base") if d["kind"] == "Service"}
    for name in ALWAYS_WATCHED:
        job = f"votestream-{name}"
        assert job in services  # the ServiceMonitor's job label is the Service's name
        selector = f'up{{job="{job}"}}'
        (rule,) = [r for r in alerts() if f"absent({selector})" in r["expr"]]
        assert f"({selector}) == 0" in rule["expr"], rule["alert"]
        assert "rate(" not in rule["expr"], "must not depend on ballots arriving"
        assert rule["labels"]["severity"] == "critical"


def test_anchor_check_notices_a_missing_section() -> None:
    assert "votestreamconsumerlaghigh" in github_anchors("### VotestreamConsumerLagHigh\n")
    assert "votestreamconsumerlaghigh" not in github_anchors("### Consumer lag\n")


def test_prometheusrule_carries_the_same_groups_as_the_rules_file() -> None:
    (rule,) = [d for d in render(K8S / "base") if d["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
