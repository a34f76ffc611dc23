"""``stream-al bench throughput`` at toy sizes on the real broker: every phase runs, the
daemon predicts every record exactly once, and the results file holds every figure.
Nothing here is about speed: the figures are only checked to exist and be consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient
from rich.console import Console

from consumers.bench.throughput.options import ThroughputOptions
from consumers.bench.throughput.run import run_bench

pytestmark = pytest.mark.integration

RECORDS = 500


def test_a_small_run_measures_every_phase_and_writes_every_field(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient, tmp_path: Path
) -> None:
    options = ThroughputOptions(records=RECORDS, bootstrap_servers=kafka_bootstrap,
                                latency_rate=100, latency_seconds=2, out=tmp_path / "t.json",
                                plot=None)
    with (tmp_path / "progress.txt").open("w", encoding="utf-8") as progress:
        returned = run_bench(options, Console(file=progress))
    result = json.loads(options.out.read_text(encoding="utf-8"))

    assert result == json.loads(json.dumps(returned))
    assert set(result) >= {"run_id", "settings", "record_bytes", "producer", "bare_consumer",
                           "pipeline", "inmemory", "latency", "ratios", "machine", "code"}
    assert result["record_bytes"]["measurements"] == 50
    assert result["producer"]["records"] == RECORDS
    for kind in ("raw", "decoded", "decoded_after"):
        assert result["bare_consumer"][kind]["records"] == RECORDS
        assert result["bare_consumer"][kind]["records_per_s"] > 0
    for template in ("logistic", "arf"):
        daemon = result["pipeline"][template]
        assert daemon["predictions"] == daemon["distinct_record_ids"] == RECORDS
        assert daemon["predicted"] + daemon["queried"] == RECORDS
        assert daemon["dead_letters"] == 0
        assert 0 < daemon["requests"] <= RECORDS
        assert daemon["records_per_s"] > 0
        assert result["inmemory"][template]["records"] == RECORDS
        assert f"{template}_vs_bare_decoded" in result["ratios"]
    latency = result["latency"]
    assert latency["received"] == latency["sent"] == 200
    for key in ("produce_to_consumed", "produce_to_daemon_send"):
        assert latency[key]["count"] == 200
        assert 0 < latency[key]["p50_ms"] <= latency[key]["p99_ms"]
    assert isinstance(result["ratios"]["target_met"], bool)
    assert {"cores", "python", "kafka_python", "river", "kafka"} <= set(result["machine"])
    assert result["code"]["stream_al"]
    leftovers = [t for t in kafka_admin.list_topics() if t.startswith(result["run_id"])]
    assert leftovers == [], "a given broker is left without the bench's topics"
