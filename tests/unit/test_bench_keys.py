"""``stream-al bench keys``: per-key costs are measured, positive, and written out."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from consumers.bench.keys.run import measure
from consumers.cli import build_cli


def test_a_key_costs_memory_and_checkpoint_bytes_that_grow_with_the_model() -> None:
    small = measure("logistic", "variable", keys=2, records=30, labels=3)
    forest = measure("arf", "variable", keys=2, records=30, labels=3)
    assert 0 < small.memory_bytes_per_key < forest.memory_bytes_per_key
    assert 0 < small.checkpoint_bytes_per_key < forest.checkpoint_bytes_per_key
    assert small.decide_us > 0 and small.learn_us > 0


def test_the_command_writes_one_row_per_template_and_strategy(tmp_path: Path) -> None:
    out = tmp_path / "keys.json"
    result = CliRunner().invoke(build_cli(), [
        "bench", "keys", "--templates", "logistic,naive_bayes", "--strategies", "variable",
        "--keys", "2", "--records", "20", "--labels", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(r["template"], r["strategy"]) for r in rows] == [
        ("logistic", "variable"), ("naive_bayes", "variable")]
    assert "memory/key" in result.output


def test_an_unknown_template_is_named() -> None:
    result = CliRunner().invoke(build_cli(), ["bench", "keys", "--templates", "nope"])
    assert result.exit_code == 2 and "'nope'" in result.output
