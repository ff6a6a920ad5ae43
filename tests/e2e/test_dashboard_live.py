"""Every Grafana panel's query, run by a real Prometheus scraping votestream under load,
returns data: it parses, and at least one series has a number (not NaN) in it."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from tests.deploy.dashboard_queries import panel_queries
from tests.deploy.paths import DASHBOARD
from tests.e2e.prometheus import NAMESPACE, Prometheus, running_prometheus
from tests.e2e.web_traffic import drive_web_traffic
from tests.support.system import System
from tests.support.waiting import eventually

VOTERS = 40
Series = list[tuple[dict[str, str], float]]
INGEST_REASONS = 'sum by (reason) (rate(votestream_ingest_rejections_total{namespace=~".*"}[1m]))'
TALLY_REASONS = (
    'sum by (reason) (rate(votestream_tally_ballots_rejected_total{namespace=~".*"}[1m]))'
)


@pytest.fixture(scope="module")
def prometheus(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with running_prometheus(system, tmp_path_factory.mktemp("prometheus")) as running:
        eventually(lambda: _scraped_jobs(running) == 3, timeout=60, what="all three scraped")
        yield running


def numbers(prometheus: Prometheus, promql: str) -> Series | None:
    """(labels, value) of an instant query; None while no series has a number (not NaN).
    A query Prometheus cannot run fails at once."""
    answer = prometheus.query(promql)
    assert answer["status"] == "success", f"{promql}: {answer.get('error')}"
    found = [(s["metric"], float(s["value"][1])) for s in answer["data"]["result"]]
    return found if any(not math.isnan(value) for _, value in found) else None


def test_every_panel_query_returns_data_from_a_live_system(
    system: System, prometheus: Prometheus
) -> None:
    traffic = drive_web_traffic(system, system.new_campaign(), voters=VOTERS)
    assert traffic.accepted == VOTERS + VOTERS // 4
    assert sorted(set(traffic.statuses)) == [202, 401, 422]
    queries = panel_queries(DASHBOARD)
    assert len(queries) >= 20
    for title, promql in queries:
        eventually(
            lambda q=promql: numbers(prometheus, q),
            timeout=90,
            what=f"data in panel {title!r} ({promql})",
        )


def test_rejections_show_by_reason_and_the_variables_offer_the_system(
    system: System, prometheus: Prometheus
) -> None:
    campaign = system.new_campaign()
    drive_web_traffic(system, campaign, voters=8)
    assert {INGEST_REASONS, TALLY_REASONS} <= {q for _, q in panel_queries(DASHBOARD)}
    wanted = {INGEST_REASONS: {"duplicate_selection", "unknown_candidate"}}
    wanted[TALLY_REASONS] = {"limit_exceeded"}
    for promql, reasons in wanted.items():
        eventually(
            lambda q=promql, r=reasons: _reasons(prometheus, q) >= r, timeout=90, what=promql
        )
    namespaces = prometheus.label_values("namespace", "votestream_ingest_requests_total")
    assert NAMESPACE in namespaces
    eventually(
        lambda: (
            campaign["id"]
            in prometheus.label_values("campaign", "votestream_publish_snapshot_age_seconds")
        ),
        timeout=60,
        what="the campaign in the campaign variable",
    )


def _scraped_jobs(prometheus: Prometheus) -> int:
    up = numbers(prometheus, 'up{job=~"votestream-.*"} == 1') or []
    return len({labels["job"] for labels, _ in up})


def _reasons(prometheus: Prometheus, promql: str) -> set[str]:
    return {labels["reason"] for labels, value in numbers(prometheus, promql) or [] if value > 0}
