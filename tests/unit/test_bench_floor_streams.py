"""The floor streams of ``bench anchors --floor-data``: STDF and CSV files read as the
daemon would read them, with the tester's or the table's truth."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consumers.bench.anchors import skal
from consumers.bench.anchors.harness import run_arm
from consumers.bench.anchors.runs import make_arm
from consumers.bench.anchors.streams import (
    FLOOR_FILES,
    Config,
    FileSource,
    Item,
    Stream,
    floor_configs,
    load,
)
from consumers.bench.labels.datasets import stdf_dataset
from consumers.cli import build_cli
from stream_al.features import FeatureConfig, extract
from stream_al.records import ParametricRecord, TransactionRecord
from tests.stdf_writer import StdfWriter

PART_FAILED = 0x08  # PRR PART_FLG bit 3


def three_parts(path: Path) -> Path:
    """A pass and a fail with results, then a pass whose flow stopped before any PTR."""
    writer = StdfWriter()
    writer.mir(lot_id="L7", part_typ="GOLD8")
    writer.wir()
    writer.part({1: 1.5, 2: 0.25}, {1: "vdd", 2: "idd"}, part_id="1")
    writer.part({1: 1.9, 2: 0.75}, {1: "vdd", 2: "idd"}, part_id="2", part_flg=PART_FAILED)
    writer.part({}, part_id="3")
    writer.wrr(parts=3)
    writer.mrr()
    return writer.write(path)


def test_an_stdf_file_is_a_stream_of_its_parts_with_the_testers_verdict(
        tmp_path: Path) -> None:
    dataset = stdf_dataset(three_parts(tmp_path / "lot.stdf.gz"))
    pairs = list(dataset.open())
    assert dataset.name == "lot" and dataset.size == 3
    assert [truth for _, truth in pairs] == ["pass", "fail", "pass"]
    records = [record for record, _ in pairs if isinstance(record, ParametricRecord)]
    assert len(records) == 3
    assert [r.product for r in records] == ["GOLD8"] * 3
    assert sorted(v for v in records[0].measurements.values() if v is not None) == [0.25, 1.5]
    assert not records[2].measurements
    # The truth is the oracle's to give: no record carries it into the features.
    assert all(r.label is None for r in records)


def test_a_csv_floor_stream_drops_its_id_and_is_shuffled_once(tmp_path: Path) -> None:
    path = tmp_path / "fraud.csv"
    rng = random.Random(3)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Index", "FLAG", "amount", "token"])
        for i in range(50):
            writer.writerow([i, int(i % 10 == 0), f"{rng.random():.3f}", "ab"[i % 2]])
    source = FileSource("csv", str(path), target="FLAG", drop=("Index",), shuffle_seed=0)
    stream = load("fraud", None, source)
    assert stream.size == 50
    assert Counter(item.truth for item in stream.items) == {"0": 45, "1": 5}
    assert not any("Index" in name for item in stream.items for name in item.x)
    ids = [item.record.record_id for item in stream.items]
    truths = [item.truth for item in stream.items]
    assert truths != sorted(truths, key=lambda t: t != "1") or ids != sorted(ids)
    assert load("fraud", 10, source).items == stream.items[:10]


def test_floor_configs_are_shuttle_the_simulator_and_the_files_that_exist(
        tmp_path: Path) -> None:
    (tmp_path / "stdf").mkdir()
    three_parts(tmp_path / "stdf" / "lot2.stdf.gz")
    configs = floor_configs(tmp_path)
    assert [c.name for c in configs] == ["shuttle LR", "ate-floor logistic", "lot2 logistic"]
    lot2 = configs[2]
    assert lot2.source is not None and Path(lot2.source.path) == tmp_path / "stdf/lot2.stdf.gz"
    assert lot2.model_config.template == "logistic"
    assert {name for name, _ in FLOOR_FILES} >= {"lot2", "lot3", "a595", "ethereum"}
    assert load(lot2.dataset, None, lot2.source).size == 3


def _gappy_stream(n: int) -> Stream:
    """Two classes on ``a``; ``b`` missing in every third record, the first included."""
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = []
    for i in range(n):
        a = rng.gauss(0, 1)
        b = None if i % 3 == 0 else rng.gauss(0, 1)
        record = TransactionRecord(record_id=f"g-{i}", ts=start + timedelta(seconds=i),
                                   numeric={"a": a, "b": b})
        items.append(Item(record, extract(record, FeatureConfig()), "fail" if a > 1 else "pass"))
    return Stream("gappy", tuple(items))


@pytest.mark.skipif(not skal.available(), reason="scikit-activeml is not installed: install "
                    "the anchors extra (pip install -e '.[anchors]')")
@pytest.mark.parametrize("name", list(skal.STRATEGIES))
def test_skactiveml_arms_run_on_records_with_missing_values(name: str) -> None:
    stream = _gappy_stream(300)
    config = Config("gappy", "logistic")
    arm = make_arm(name, config, 0, 0.1, stream)
    result = run_arm(stream, arm, 0.1, 0)
    assert result.records == 300
    assert 5 <= result.labels_used <= 31


@pytest.mark.slow
def test_floor_data_runs_the_floor_streams_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "stdf").mkdir(parents=True)
    three_parts(shared / "stdf" / "lot3.stdf.gz")
    out = tmp_path / "out"
    result = CliRunner().invoke(build_cli(), [
        "bench", "anchors", "--floor-data", str(shared), "--records", "150", "--seeds", "1",
        "--budget", "0.1", "--delay", "0", "--out", str(out / "f.json"),
        "--markdown", str(out / "f.md"), "--plot", str(out / "f.png")])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "f.json").read_text())
    assert {(r["dataset"], r["model"]) for r in rows} == {
        ("shuttle", "LR"), ("ate-floor", "logistic"), ("lot3", "logistic")}
    lot3 = [r for r in rows if r["dataset"] == "lot3"]
    assert {r["records"] for r in lot3} == {3}
    assert "Means over the 3 configurations" in (out / "f.md").read_text()
    assert (out / "f.png").read_bytes().startswith(b"\x89PNG")
