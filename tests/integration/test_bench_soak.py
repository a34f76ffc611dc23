"""``stream-al bench soak`` for one minute on the session's broker: steady traffic, one
kill -9, label bursts; nothing lost, no stall, and every figure in the results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient
from typer.testing import CliRunner

from consumers.cli import build_cli
from tests.clients_support import CLIENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("kafka_client", CLIENTS)
def test_a_minute_with_a_kill_loses_nothing_and_never_stalls(
        kafka_bootstrap: str, kafka_client: str, kafka_admin: KafkaAdminClient,
        tmp_path: Path) -> None:
    out, plot = tmp_path / "soak.json", tmp_path / "soak.png"
    done = CliRunner().invoke(build_cli(), [
        "bench", "soak", "--minutes", "1", "--rate", "50", "--kill-every", "25",
        "--label-burst-every", "10", "--bootstrap-servers", kafka_bootstrap,
        "--client", kafka_client,
        "--out", str(out), "--plot", str(plot)])
    result = json.loads(out.read_text(encoding="utf-8"))

    assert done.exit_code == 0, (done.output, result["verdict"])
    assert result["verdict"] == {"ok": True, "reasons": []}
    assert result["client"] == kafka_client
    assert result["restarts"]["kills"] == 1 and result["restarts"]["broker_stops"] == 0
    assert result["restarts"]["unexpected_exits"] == []
    predictions, labels = result["predictions"], result["labels"]
    assert predictions["produced"] >= 2000 and predictions["missing"] == 0
    assert predictions["prediction_messages"] >= predictions["produced"]
    assert labels["labels_sent"] > 0 and labels["lost"] == 0
    assert labels["learned_in_final_state"] == labels["queries_answered"]
    assert all(r["recovered_after_s"] is not None for r in result["recoveries"])
    assert result["stalls"] == []
    assert result["rss"]["overall"]["first_quarter_median_mb"] > 0
    assert len(result["samples"]) >= 25
    assert {"load_average_before", "load_average_after", "kafka_python"} <= set(
        result["machine"])
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "soak-daemon.log").is_file()
    leftovers = [t for t in kafka_admin.list_topics() if t.startswith(result["run_id"])]
    assert leftovers == [], "a given broker is left without the soak's topics"
