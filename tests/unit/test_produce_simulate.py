"""``stream-al produce --simulate``: the compose demo profile's floor."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from consumers.cli import build_cli
from consumers.produce.simulated import floor_items
from stream_al.codec import decode_record


def test_simulated_records_are_valid_and_carry_their_truth() -> None:
    result = CliRunner().invoke(build_cli(), ["produce", "--simulate", "--records", "50",
                                              "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 50
    records = [decode_record(line.encode()) for line in lines]
    assert len({r.record_id for r in records}) == 50
    assert {r.label for r in records} <= {"pass", "fail"} and records[0].label is not None
    assert json.loads(lines[0])["kind"] == "parametric"


def test_zero_records_means_without_end() -> None:
    items = floor_items(0, seed=1)
    first_2500 = [next(items) for _ in range(2500)]  # past one internal chunk
    assert len({item.record["record_id"] for item in first_2500}) == 2500
