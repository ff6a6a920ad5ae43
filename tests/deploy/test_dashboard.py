"""The Grafana dashboard: valid against Grafana's schemas, every query is PromQL."""

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .dashboard_queries import panel_queries, substitute
from .paths import DASHBOARD, GRAFANA_SCHEMAS
from .tools import require_tool, run

REQUIRED_METRICS = {
    "votestream_ingest_requests_total",
    "votestream_ingest_request_seconds_bucket",
    "votestream_ingest_rejections_total",
    "votestream_kiosk_batches_total",
    "votestream_kiosk_chain_breaks_total",
    "votestream_tally_ballots_counted_total",
    "votestream_tally_ballots_rejected_total",
    "votestream_tally_batch_seconds_bucket",
    "votestream_tally_batch_size_bucket",
    "votestream_tally_end_to_end_seconds_bucket",
    "votestream_tally_consumer_lag",
    "votestream_tally_oldest_uncounted_age_seconds",
    "votestream_tally_detections_total",
    "votestream_publish_snapshots_total",
    "votestream_publish_snapshot_age_seconds",
    "votestream_publish_webhook_deliveries_total",
}


def load_schema(name: str) -> dict[str, Any]:
    path = GRAFANA_SCHEMAS / f"{name}.jsonschema.json"
    if not path.is_file():
        pytest.fail(f"no Grafana schema {path}")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def schema_errors(
    schema: dict[str, Any], instance: Any, definition: str | None = None
) -> list[str]:
    if definition is not None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(instance)]


def leaf_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        flat.extend(panel.get("panels", []) if panel["type"] == "row" else [panel])
    return flat


def panel_errors(panel: dict[str, Any]) -> list[str]:
    """Checks the parts the dashboard schema leaves open: options, custom config, queries."""
    plugin = load_schema(panel["type"])
    errors = schema_errors(plugin, panel.get("options", {}), "Options")
    custom = panel["fieldConfig"]["defaults"].get("custom")
    if custom is not None and "FieldConfig" in plugin["definitions"]:
        errors += schema_errors(plugin, custom, "FieldConfig")
    for target in panel.get("targets", []):
        errors += schema_errors(load_schema("prometheus"), target)
    return [f"{panel.get('title')}: {line}" for line in errors]


@pytest.fixture
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def test_dashboard_matches_the_grafana_schema(dashboard: dict[str, Any]) -> None:
    assert schema_errors(load_schema("dashboard"), dashboard) == []


def test_every_panel_matches_its_plugin_and_query_schemas(dashboard: dict[str, Any]) -> None:
    errors = [line for panel in leaf_panels(dashboard) for line in panel_errors(panel)]
    assert not errors, "\n".join(errors)


def test_schemas_reject_an_export_style_dashboard(dashboard: dict[str, Any]) -> None:
    broken = copy.deepcopy(dashboard)
    broken["__inputs"] = [{"name": "DS_PROMETHEUS"}]
    broken["panels"][1]["datasource"] = "${DS_PROMETHEUS}"
    assert len(schema_errors(load_schema("dashboard"), broken)) >= 2
    panel = copy.deepcopy(leaf_panels(dashboard)[0])
    panel["options"]["legend"] = {"displayMode": "sideways"}
    assert panel_errors(panel)


def test_panels_have_unique_ids_titles_and_descriptions(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]] + [
        p["id"] for row in dashboard["panels"] for p in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids))
    for panel in leaf_panels(dashboard):
        assert panel["title"] and panel["description"], panel["title"]
        assert panel["targets"], panel["title"]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_the_dashboard_shows_every_metric_the_issue_names(dashboard: dict[str, Any]) -> None:
    exprs = " ".join(expr for _, expr in panel_queries(DASHBOARD))
    assert not {m for m in REQUIRED_METRICS if m not in exprs}


def test_campaign_variable_filters_the_snapshot_age(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["campaign"]["type"] == "query"
    assert "votestream_publish_snapshot_age_seconds" in variables["campaign"]["query"]
    raw = [t["expr"] for p in leaf_panels(dashboard) for t in p["targets"]]
    assert any('campaign=~"$campaign"' in expr for expr in raw)


def test_lag_panel_says_it_is_wrong_on_the_embedded_broker(dashboard: dict[str, Any]) -> None:
    (lag,) = [
        p
        for p in leaf_panels(dashboard)
        if any("votestream_tally_consumer_lag" in t["expr"] for t in p["targets"])
    ]
    assert "WRONG ON THE EMBEDDED TANSU BROKER" in lag["description"]


def test_panel_queries_fill_in_every_variable() -> None:
    queries = panel_queries(DASHBOARD)
    assert len(queries) >= 20
    assert all("$" not in expr for _, expr in queries)
    assert substitute('rate(x{campaign=~"$campaign"}[$__rate_interval])') == (
        'rate(x{campaign=~".*"}[1m])'
    )
    assert substitute('x{namespace=~"${namespace}"}') == 'x{namespace=~".*"}'


def promtool_parses(queries: list[tuple[str, str]], tmp_path: Path) -> tuple[bool, str]:
    """promtool parses PromQL offline when it checks recording rules; one rule a query."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)
    ]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8"
    )
    result = run([require_tool("promtool"), "check", "rules", str(path)])
    return result.returncode == 0, result.stdout + result.stderr


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    ok, output = promtool_parses(panel_queries(DASHBOARD), tmp_path)
    assert ok, output


def test_a_broken_panel_query_is_caught(tmp_path: Path) -> None:
    ok, _ = promtool_parses([("broken", "sum by (le (rate(x[1m]))")], tmp_path)
    assert not ok
