"""Real Prometheus tools for the tests: promtool, and a Prometheus server on 127.0.0.1.

Both come from Debian's ``prometheus`` package (``/usr/bin/prometheus``,
``/usr/bin/promtool``), which ``scripts/install-test-tools`` installs when missing. A test
that needs them skips on a developer machine without them, but FAILS under CI
(``CI=true``): there a missing tool is a broken install step, not a reason to skip.

``running_prometheus`` starts a server with a generated config that scrapes the given
targets every second (and evaluates the given rule files every second), waits until it
answers ``/-/ready``, and stops it on the way out, also when the test fails.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.kafka_local.process import spawn, tail, terminate

#: DESIGN §8, as exposed: metric name → label names of its samples (histograms by base name).
DESIGN_METRICS: dict[str, set[str]] = {
    "stream_al_records_total": {"kind", "outcome"},
    "stream_al_queries_total": {"model_key", "reason"},
    "stream_al_labels_total": {"outcome"},
    "stream_al_label_latency_seconds": set(),
    "stream_al_pending_queries": set(),
    "stream_al_query_threshold": {"model_key"},
    "stream_al_budget_spent_ratio": {"model_key"},
    "stream_al_uncertainty": set(),
    "stream_al_model_accuracy": {"model_key", "window"},
    "stream_al_model_labels_total": {"model_key"},
    "stream_al_processing_seconds": set(),
    "stream_al_consumer_lag": {"topic", "partition"},
    "stream_al_dead_letters_total": {"reason"},
    "stream_al_query_skips_total": {"reason"},
    "stream_al_last_checkpoint_timestamp_seconds": set(),
    "stream_al_build_info": {"version", "python", "river"},
}
INSTALL_HINT = "scripts/install-test-tools installs it (Debian package: prometheus)"
_READY_TIMEOUT_S = 30.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def dashboard_expressions(path: Path) -> dict[str, list[str]]:
    """Panel title → its PromQL expressions, from a dashboard JSON file."""
    board = json.loads(path.read_text(encoding="utf-8"))
    return {panel["title"]: [target["expr"] for target in panel["targets"]]
            for panel in board["panels"] if panel.get("targets")}


def require_tool(name: str) -> str:
    """Path of the executable ``name``; skip without it, or fail under CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: {INSTALL_HINT}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_module(name: str, dependency: str) -> Any:
    """Import ``name``; skip without it, or fail under CI (the test extra must have it)."""
    message = f"needs {dependency} (the project's test extra)"
    if not in_ci():
        return pytest.importorskip(name, reason=message)
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.fail(message)


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool; the result carries its exit code and combined output for asserts."""
    return subprocess.run(
        [require_tool("promtool"), *args], input=stdin.decode() if stdin else None,
        capture_output=True, text=True, timeout=60, check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PromQLError(AssertionError):
    """Prometheus refused a query; the message is Prometheus's own error."""


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    workdir: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query via ``/api/v1/query``; the result vector (or PromQLError)."""
        data = self.get_json("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if data["resultType"] in ("vector", "matrix"):
            series: list[dict[str, Any]] = data["result"]
            return series
        return [{"value": data["result"]}]  # a scalar or a string: one value, no labels

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts currently pending or firing, from ``/api/v1/alerts``."""
        alerts: list[dict[str, Any]] = self.get_json("/api/v1/alerts")["alerts"]
        return alerts

    def get_json(self, path: str) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:  # noqa: S310
                body = json.load(response)
        except urllib.error.HTTPError as error:  # 400/422: a query Prometheus rejects
            body = json.load(error)
        if body.get("status") != "success":
            raise PromQLError(f"{path}: {body.get('errorType')}: {body.get('error')}")
        data: dict[str, Any] = body["data"]
        return data

    def log(self) -> str:
        return tail(self.workdir / "prometheus.log")


def write_config(workdir: Path, targets: Sequence[str], rule_files: Sequence[Path],
                 job: str) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path.resolve()) for path in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextmanager
def running_prometheus(workdir: Path, targets: Sequence[str], rule_files: Sequence[Path] = (),
                       job: str = "stream-al") -> Iterator[PrometheusServer]:
    """A Prometheus on 127.0.0.1 scraping ``targets`` as ``job`` every second."""
    binary = require_tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir, targets, rule_files, job)
    port = free_port()
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    process = spawn(command, workdir / "prometheus.log", die_with_parent=True)
    server = PrometheusServer(f"http://127.0.0.1:{port}", workdir)
    try:
        _wait_ready(server, process)
        yield server
    finally:
        terminate(process.pid, process.pid, grace=10.0, child=process)


def _wait_ready(server: PrometheusServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + "/-/ready", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass  # not listening yet, or still loading its storage (503)
        time.sleep(0.05)
    raise RuntimeError(f"prometheus not ready within {_READY_TIMEOUT_S:.0f} s:\n{server.log()}")


def wait_for(server: PrometheusServer, expr: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Poll ``expr`` until it returns data; the data, or an AssertionError naming it.

    A wait for readiness, not a timing assertion: the deadline only bounds a broken run.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = server.query(expr)
        if result or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert result, f"{expr!r} returned no data within {timeout_s:.0f} s\n{server.log()}"
    return result
