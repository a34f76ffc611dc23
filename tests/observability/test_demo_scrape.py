"""Prometheus scraping the real ``stream-al demo``: every dashboard panel has data.

The troubled-floor exporter (test_prometheus.py) proves every alert can fire; this test
proves the product itself feeds every panel a person looks at.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.observability.test_prometheus import DASHBOARD, expand, has_numbers
from tests.prometheus_support import (
    PrometheusServer,
    dashboard_expressions,
    free_port,
    running_prometheus,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo at a paced rate, so Prometheus sees it working for a while."""
    port = free_port()
    out = tmp_path_factory.mktemp("demo")
    command = [sys.executable, "-m", "consumers", "demo", "--records", "12000", "--rate", "500",
               "--hold", "60", "--oracle-delay", "5", "--metrics-port", str(port),
               "--out", str(out)]
    log = (out / "demo.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def prometheus(demo: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[PrometheusServer]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), [demo]) as server:
        # Labels have come back and been learnt, and rate windows hold several samples.
        wait_for(server, "stream_al_model_labels_total > 0", timeout_s=90)
        wait_for(server, 'count_over_time(stream_al_records_total{outcome="queried"}[1m]) >= 5',
                 timeout_s=60)
        wait_for(server, "stream_al_model_accuracy", timeout_s=60)
        wait_for(server, "rate(stream_al_label_latency_seconds_count[15s]) > 0", timeout_s=60)
        yield server


def test_every_dashboard_panel_has_data_from_the_running_demo(
        prometheus: PrometheusServer) -> None:
    empty = [f"{title}: {expr}"
             for title, expressions in dashboard_expressions(DASHBOARD).items()
             for expr in expressions if not has_numbers(prometheus.query(expand(expr)))]
    assert empty == [], prometheus.log()


def test_the_demo_spends_about_its_budget(prometheus: PrometheusServer) -> None:
    # û forgets over w = 1000 records per product: it reads near B only once each of the
    # three products has seen a few thousand (on a loaded machine that takes a while).
    wait_for(prometheus, "sum(stream_al_records_total) >= 9000", timeout_s=120)
    ratios = [float(s["value"][1]) for s in prometheus.query("stream_al_budget_spent_ratio")]
    assert len(ratios) == 3  # one per product
    assert all(0.3 < ratio <= 1.2 for ratio in ratios), ratios


def test_the_demo_checkpoints(prometheus: PrometheusServer) -> None:
    wait_for(prometheus, "time() - stream_al_last_checkpoint_timestamp_seconds < 30")

