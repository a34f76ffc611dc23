"""The embedded demo and the label benchmark, run as a person would (CLI), small sizes."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.request
from pathlib import Path
from threading import Thread

import pytest
from rich.console import Console
from typer.testing import CliRunner

from consumers.bench.labels.datasets import builtin_dataset, csv_dataset
from consumers.bench.labels.runs import baselines, plan, summarise
from consumers.cli import build_cli
from consumers.demo.run import DemoOptions, run_demo
from stream_al.records import TransactionRecord
from stream_al.replay import Labelled


def test_demo_writes_its_plot_and_a_summary_within_budget(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_cli(), ["demo", "--records", "3000", "--metrics-port", "0",
                                              "--out", str(tmp_path), "--oracle-delay", "10"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["records"] == 3000
    assert 0 < summary["labels_active"] <= 0.1 * 3000 + 3  # B·n plus one per model
    assert summary["labels_all"] > 2500
    png = (tmp_path / "learning-curve.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_demo_serves_metrics_while_it_runs(tmp_path: Path) -> None:
    port = _free_port()
    options = DemoOptions(records=2000, out=tmp_path, metrics_port=port, hold_s=5.0)
    runner = Thread(target=run_demo, args=(options, Console(file=io.StringIO())))
    runner.start()
    scraped = b""
    deadline = time.monotonic() + 120
    while runner.is_alive() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                scraped = response.read()
        except OSError:
            time.sleep(0.1)  # not listening yet
            continue
        if b'outcome="queried"} 0.0' not in scraped:
            break  # a scrape taken after the first queries
    runner.join(timeout=120)
    assert b"stream_al_records_total" in scraped
    assert b'stream_al_records_total{kind="parametric",outcome="predicted"} 0.0' not in scraped


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_bench_labels_rows_follow_the_design_format(tmp_path: Path) -> None:
    data = tmp_path / "tiny.csv"
    rows = ["t,x,y"] + [f"{i},{(i * 7) % 10},{'a' if (i * 7) % 10 > 4 else 'b'}"
                        for i in range(600)]
    data.write_text("\n".join(rows) + "\n")
    out, plot = tmp_path / "rows.json", tmp_path / "curves.png"
    result = CliRunner().invoke(build_cli(), [
        "bench", "labels", "--data", str(data), "--target", "y", "--time", "t",
        "--strategy", "variable", "--budget", "0.2", "--out", str(out), "--plot", str(plot),
        "--delay", "5"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert {r["strategy"] for r in written} == {"all", "variable", "random"}
    assert set(written[0]) == CONTRACT | EXTRAS
    assert all(r["records"] == 600 for r in written)
    # A binary stream: its escape rate is the minority class missed, 1 − its recall.
    assert all(r["escape_rate"] == pytest.approx(1 - r["minority_recall"]) for r in written)
    assert all(0 <= r["overkill"] <= 1 for r in written)
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "annotation savings" in result.output


#: The rows' stable fields (DESIGN §10), and those added beside them.
CONTRACT = {"dataset", "model", "strategy", "budget", "seed", "accuracy", "accuracy_last20",
            "balanced_accuracy", "labels_used", "records", "records_per_s"}
EXTRAS = {"minority_recall", "escape_rate", "overkill", "labels_to_95", "labels_to_98",
          "prior_correction"}


def test_bench_labels_rows_of_a_multiclass_stream_have_no_binary_scores(tmp_path: Path) -> None:
    data = tmp_path / "three.csv"
    data.write_text("x,y\n" + "".join(f"{i % 3},{'abc'[i % 3]}\n" for i in range(300)))
    out = tmp_path / "rows.json"
    result = CliRunner().invoke(build_cli(), [
        "bench", "labels", "--data", str(data), "--target", "y", "--strategy", "variable",
        "--budget", "0.2", "--out", str(out), "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    for row in json.loads(out.read_text()):
        assert row["escape_rate"] is None and row["overkill"] is None
        assert row["minority_recall"] is None


def test_bench_labels_refuses_unknown_strategies_and_budgets() -> None:
    runner = CliRunner()
    bad = runner.invoke(build_cli(), ["bench", "labels", "--strategy", "smart"])
    assert bad.exit_code == 2 and "smart" in bad.output
    bad = runner.invoke(build_cli(), ["bench", "labels", "--budget", "1.5"])
    assert bad.exit_code == 2 and "1.5" in bad.output


def test_plan_adds_random_and_all_and_summary_compares_with_all() -> None:
    dataset = builtin_dataset("sea", size=300)
    runs = plan([dataset], ["variable"], [0.1, 0.2], seeds=2)
    assert sorted({(r.strategy, r.budget) for r in runs}) == [
        ("all", 1.0), ("random", 0.1), ("random", 0.2), ("variable", 0.1), ("variable", 0.2)]
    rows = [{"dataset": "d", "strategy": s, "budget": b, "accuracy": a, "accuracy_last20": a,
             "balanced_accuracy": a, "labels_used": 1, "records_per_s": 1.0}
            for s, b, a in (("all", 1.0, 0.8), ("variable", 0.1, 0.6), ("variable", 0.1, 0.8))]
    [variable] = [r for r in summarise(rows) if r["strategy"] == "variable"]
    assert variable["accuracy"] == 0.7 and variable["of_all_labels"] == 0.7 / 0.8


def test_baselines_are_majority_and_no_change(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{i},{label}\n" for i, label in
                                      enumerate("aaabbbbbab")))
    base = baselines(csv_dataset(data, target="y"))
    assert base == {"majority": 0.6, "no_change": 6 / 9}  # aa aa bb bb bb bb of 9 pairs


def test_csv_dataset_names_a_missing_column(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"no column 'label'; columns are \['a', 'b'\]"):
        csv_dataset(data, target="label")


def _features(dataset_rows: list[Labelled]) -> list[dict[str, str | float | None]]:
    features: list[dict[str, str | float | None]] = []
    for record, _ in dataset_rows:
        assert isinstance(record, TransactionRecord)
        features.append({**record.numeric, **record.categorical})
    return features


def test_csv_time_column_orders_the_stream_and_is_never_a_feature(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("ts,x,y\n2026-01-03,3,a\n2026-01-01,1,b\n2026-01-02,2,a\n")
    rows = list(csv_dataset(data, target="y", time_column="ts").open())
    assert [truth for _, truth in rows] == ["b", "a", "a"]
    assert _features(rows) == [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}]


def test_csv_with_a_utf8_byte_order_mark_keeps_its_first_column_name(tmp_path: Path) -> None:
    data = tmp_path / "excel.csv"
    data.write_bytes("\ufeffid,x,y\n1,0.5,a\n2,0.7,b\n".encode())
    rows = list(csv_dataset(data, target="y", drop=["id"]).open())
    assert _features(rows) == [{"x": 0.5}, {"x": 0.7}]
    assert list(csv_dataset(data, target="id").open())[0][1] == "1"


def test_csv_column_with_numbers_and_words_is_one_categorical_feature(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("lot,v,y\n7,1.5,a\nA7,,b\n8,NA,a\n,2.5,b\n")
    features = _features(list(csv_dataset(data, target="y").open()))
    assert [f.get("lot") for f in features] == ["7", "A7", "8", None]
    # v has only numbers and gaps: numeric, a gap is a missing value (None) for the imputer.
    assert [f["v"] for f in features] == [1.5, None, None, 2.5]


def test_csv_drop_removes_id_columns_and_names_an_unknown_one(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,serial,x,y\n1,S1,0.1,a\n2,S2,0.2,b\n")
    rows = list(csv_dataset(data, target="y", drop=["id", "serial"]).open())
    assert _features(rows) == [{"x": 0.1}, {"x": 0.2}]
    with pytest.raises(ValueError, match="no column 'lot'"):
        csv_dataset(data, target="y", drop=["lot"])


def test_bench_labels_drop_option_reaches_the_loader(tmp_path: Path) -> None:
    data = tmp_path / "ids.csv"
    data.write_text("id,x,y\n" + "".join(f"r{i},{i % 2},{'ab'[i % 2]}\n" for i in range(200)))
    out = tmp_path / "rows.json"
    args = ["bench", "labels", "--data", str(data), "--target", "y", "--budget", "0.2",
            "--strategy", "variable", "--out", str(out), "--plot", str(tmp_path / "p.png")]
    assert CliRunner().invoke(build_cli(), [*args, "--drop", "id"]).exit_code == 0
    assert {r["records"] for r in json.loads(out.read_text())} == {200}
    bad = CliRunner().invoke(build_cli(), [*args, "--drop", "nope"])
    assert bad.exit_code != 0 and "no column 'nope'" in str(bad.exception)


def test_demo_with_its_metrics_port_taken_stops_at_once_naming_the_option(
        tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_AL_")}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "consumers", "demo", "--metrics-port", str(port),
             "--records", "3000", "--out", str(tmp_path)], env=env, capture_output=True,
            text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    finally:
        taken.close()
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"stream-al demo: 127.0.0.1:{port} is already in use (another stream-al?); use "
        "--metrics-port (0 picks a free port)"]
    assert not (tmp_path / "summary.json").exists()


def test_demo_tries_its_port_before_simulating_the_floor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from consumers.demo import run
    from stream_al.errors import ConfigError

    def too_early(options: DemoOptions) -> None:
        raise AssertionError("the floor was simulated before the port was tried")

    monkeypatch.setattr(run, "simulate_floor", too_early)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        options = DemoOptions(records=1000, out=tmp_path, metrics_port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match="--metrics-port"):
            run_demo(options, Console(file=io.StringIO()))
