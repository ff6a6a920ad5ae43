"""The PromQL behind every panel of a Grafana dashboard, ready to send to Prometheus.

Grafana fills in template variables before it queries; this does the same with values
that match everything: `$campaign` (and every other dashboard variable) becomes the
regex `.*`, `$__rate_interval` and its kin become `1m`.
"""

import json
import re
from pathlib import Path
from typing import Any

# Grafana's built-in interval variables, given the value a 15 s scrape would get.
INTERVALS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def panel_queries(dashboard_path: Path | str) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel, rows included."""
    dashboard = json.loads(Path(dashboard_path).read_text(encoding="utf-8"))
    queries: list[tuple[str, str]] = []
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            if expr and not target.get("hide", False):
                queries.append((panel.get("title", ""), substitute(expr)))
    return queries


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return INTERVALS.get(name, ".*")

    return VARIABLE.sub(value, expr)


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for panel in panels:
        flat.append(panel)
        flat.extend(_panels(panel.get("panels", [])))
    return flat
