"""Every PromQL expression we ship, run on a real Prometheus scraping a real exporter.

A Debian ``prometheus`` on 127.0.0.1 scrapes every second, evaluates the alert rules
every second, and answers ``/api/v1/query``. Each expression of the Grafana dashboard
and of the alert rules must parse and return data (at least one series, not all NaN),
so a misspelt metric, label or function fails here instead of showing an empty panel
or an alert that can never fire.

The target today is ``exporter``: prometheus_client's own HTTP server on a registry
driven by ``TroubledFloor`` (every metric of ``stream_al.metrics.Metrics`` moving, every
alert condition true), because the daemon and the demo are still being written. When
``stream-al demo --metrics-port`` exists, point the dashboard test at it (a fixture that
starts it on ``free_port()`` and yields ``127.0.0.1:PORT``) and keep the troubled floor
as the target of the alert tests: a healthy demo rightly fires no alert.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import start_http_server

from tests.observability.troubled_floor import troubled_registry
from tests.prometheus_support import (
    DESIGN_METRICS,
    PrometheusServer,
    dashboard_expressions,
    free_port,
    running_prometheus,
    wait_for,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "stream-al.json"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "stream-al.rules.yml"
#: Grafana's variables, as Grafana would expand them with 1 s scrapes and "All" models.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$model_key": ".*"}
#: Scrapes to wait for: every rate() window then holds at least two samples, and increases.
_SCRAPES = 3


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    """``host:port`` of a live /metrics: the troubled floor (see the module docstring)."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=troubled_registry())
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[PrometheusServer]:
    """Prometheus scraping the exporter and one replica that is down (nothing listens)."""
    down = f"127.0.0.1:{free_port()}"
    workdir = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(workdir, [exporter, down], rule_files=[RULES]) as server:
        wait_for(server, f"count_over_time(stream_al_pending_queries[1m]) >= {_SCRAPES}")
        wait_for(server, f'up{{instance="{down}"}} == 0')
        yield server


def expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def has_numbers(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(series["value"][1])) for series in result)


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_every_dashboard_expression_returns_data(prometheus: PrometheusServer) -> None:
    empty = []
    for title, expressions in dashboard_expressions(DASHBOARD).items():
        for expr in expressions:
            if not has_numbers(prometheus.query(expand(expr))):
                empty.append(f"{title}: {expr}")
    assert empty == [], prometheus.log()


def test_checkpoint_age_is_shown_after_a_checkpoint_and_not_before_the_first(
        prometheus: PrometheusServer) -> None:
    [expr] = dashboard_expressions(DASHBOARD)["Checkpoint age"]
    gauge = "stream_al_last_checkpoint_timestamp_seconds"
    assert gauge in expr
    ages = [float(series["value"][1]) for series in prometheus.query(expand(expr))]
    assert ages and all(0 < age < 86_400 for age in ages)  # the floor checkpointed 1 h ago
    # A replica that has not checkpointed yet exposes the gauge at 0.
    before_first = expr.replace(gauge, f"(0 * {gauge})")
    assert prometheus.query(expand(before_first)) == []
    assert prometheus.query(f"time() - (0 * {gauge})") != []  # what the panel used to show


def test_every_alert_expression_returns_data_on_a_floor_in_trouble(
        prometheus: PrometheusServer) -> None:
    empty = [name for name, expr in alert_expressions().items()
             if not has_numbers(prometheus.query(expr))]
    assert empty == []


def test_every_metric_the_rules_read_is_exposed(prometheus: PrometheusServer) -> None:
    read = set(re.findall(r"\bstream_al_\w+", " ".join(alert_expressions().values())))
    assert read and read <= set(DESIGN_METRICS)
    assert [name for name in read if not prometheus.query(name)] == []


def test_every_metric_of_the_design_reaches_prometheus(prometheus: PrometheusServer) -> None:
    names = [f"{name}_count" if _is_histogram(name) else name for name in DESIGN_METRICS]
    assert [name for name in names if not prometheus.query(name)] == []


def _is_histogram(name: str) -> bool:
    return name in {"stream_al_label_latency_seconds", "stream_al_uncertainty",
                    "stream_al_processing_seconds"}


def test_every_alert_goes_pending_or_firing(prometheus: PrometheusServer) -> None:
    expected = set(alert_expressions())
    deadline = time.monotonic() + 30.0  # bounds a broken run; rules evaluate every second
    seen: set[str] = set()
    while not expected <= seen and time.monotonic() < deadline:
        seen = {alert["labels"]["alertname"] for alert in prometheus.alerts()}
        time.sleep(0.2)
    assert expected - seen == set(), prometheus.log()
    rules = prometheus.get_json("/api/v1/rules")["groups"][0]["rules"]
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
