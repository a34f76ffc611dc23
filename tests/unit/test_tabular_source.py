"""CSV and JSONL files into parametric and transaction records, by a column mapping."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from consumers.produce.items import Parsed, Problem
from consumers.produce.tabular.source import (
    ColumnMapping,
    MappingError,
    TabularFormat,
    TabularSource,
    product_problem,
)

CSV = """\
serial,when,device,vdd_v,idd_ma,leak_ua,x,y,bin
s1,2026-11-24T10:15:02Z,PMIC-A7,0.90,1.2,0.4,3,4,pass
s2,2026-11-24T10:15:03Z,PMIC-A7,0.91,NA,0.5,5,6,fail
"""
MAPPING = ColumnMapping(
    id_column="serial",
    ts_column="when",
    product_column="device",
    label_column="bin",
    fields={"die_x": "x", "die_y": "y"},
)


def read(
    path: Path, mapping: ColumnMapping, fmt: TabularFormat = "csv"
) -> tuple[list[dict[str, Any]], list[Problem]]:
    items = list(TabularSource(path, mapping, fmt, fallback_ts=0))
    return [i.record for i in items if isinstance(i, Parsed)], [
        i for i in items if isinstance(i, Problem)
    ]


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parametric_rows_with_every_unmapped_numeric_column_as_a_measurement(
    tmp_path: Path,
) -> None:
    records, problems = read(write(tmp_path, CSV), MAPPING)
    assert problems == []
    assert records[0] == {
        "schema_version": 1,
        "kind": "parametric",
        "record_id": "s1",
        "ts": "2026-11-24T10:15:02Z",
        "label": "pass",
        "product": "PMIC-A7",
        "die_x": 3,
        "die_y": 4,
        "measurements": {"vdd_v": 0.9, "idd_ma": 1.2, "leak_ua": 0.4},
    }
    assert records[1]["measurements"]["idd_ma"] is None


def test_measurement_globs_choose_the_columns(tmp_path: Path) -> None:
    mapping = ColumnMapping(product="P", measurement_columns=("*_v", "leak*"))
    records, _ = read(write(tmp_path, CSV), mapping)
    assert set(records[0]["measurements"]) == {"vdd_v", "leak_ua"}
    content = hashlib.sha256(CSV.encode()).hexdigest()[:16]
    assert records[0]["record_id"] == f"{content}-L000002"  # content and line: stable
    assert records[0]["ts"] == "1970-01-01T00:00:00Z"


def test_ids_without_an_id_column_survive_a_rename_and_a_copy(tmp_path: Path) -> None:
    mapping = ColumnMapping(product="P")
    path = write(tmp_path, CSV, "lot7.csv")
    ids = [r["record_id"] for r in read(path, mapping)[0]]
    shutil.copy(path, tmp_path / "copy.csv")
    path.rename(tmp_path / "renamed-mid-read.csv")
    assert [r["record_id"] for r in read(tmp_path / "renamed-mid-read.csv", mapping)[0]] == ids
    assert [r["record_id"] for r in read(tmp_path / "copy.csv", mapping)[0]] == ids
    other = write(tmp_path, CSV + "s3,2026-11-24T10:15:04Z,PMIC-A7,1,1,1,1,1,pass\n", "b.csv")
    assert read(other, mapping)[0][0]["record_id"] != ids[0]  # other content, other ids


def test_a_given_content_hash_is_used_and_the_file_not_hashed_again(tmp_path: Path) -> None:
    source = TabularSource(
        write(tmp_path, CSV), ColumnMapping(product="P"), "csv", content_sha256="ab" * 32
    )
    records = [i.record for i in source if isinstance(i, Parsed)]
    assert records[0]["record_id"] == "abababababababab-L000002"


def test_a_symbolic_link_is_refused_when_links_are_not_followed(tmp_path: Path) -> None:
    link = tmp_path / "link.csv"
    link.symlink_to(write(tmp_path, CSV))
    assert len(read(link, MAPPING)[0]) == 2  # an explicit file argument may be a link
    with pytest.raises(OSError, match="link"):
        list(TabularSource(link, MAPPING, "csv", fallback_ts=0, follow_symlinks=False))


def test_a_value_of_the_wrong_type_is_reported_with_line_and_column(tmp_path: Path) -> None:
    text = CSV + "s3,2026-11-24T10:15:04Z,PMIC-A7,0.92,oops,0.6,7,8,pass\n"
    text += "s4,2026-11-24T10:15:05Z,PMIC-A7,0.93,1.1,0.7,1.5,8,pass\n"
    records, problems = read(write(tmp_path, text), MAPPING)
    assert [r["record_id"] for r in records] == ["s1", "s2"]
    assert [(p.position, p.kind) for p in problems] == [
        ("line 4, column 'idd_ma'", "wrong type"),
        ("line 5, column 'x'", "wrong type"),
    ]
    assert "'oops' is not a number" in problems[0].reason
    assert problems[0].file == str(tmp_path / "data.csv")


def test_bad_timestamp_and_wrong_field_count_are_reported(tmp_path: Path) -> None:
    text = CSV + "s3,soon,PMIC-A7,0.92,1,0.6,7,8,pass\ns4,short\n"
    records, problems = read(write(tmp_path, text), MAPPING)
    assert len(records) == 2
    assert [(p.position, p.kind) for p in problems] == [
        ("line 4, column 'when'", "wrong type"),
        ("line 5", "wrong field count"),
    ]


def test_an_unknown_mapped_column_names_it_and_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, CSV)
    source = TabularSource(path, ColumnMapping(id_column="serial_no"), "csv")
    with pytest.raises(MappingError) as caught:
        source.check()
    message = str(caught.value)
    assert "'serial_no' (--id-column)" in message and str(path) in message
    assert "'serial', 'when', 'device'" in message
    items = list(source)
    assert [type(i) for i in items] == [Problem]
    assert isinstance(items[0], Problem) and items[0].kind == "unknown column"


def test_a_glob_that_matches_nothing_is_a_mapping_error(tmp_path: Path) -> None:
    source = TabularSource(write(tmp_path, CSV), ColumnMapping(measurement_columns=("z*",)), "csv")
    with pytest.raises(MappingError, match="'z\\*' matches no column"):
        source.check()


def test_transactions_split_numeric_and_categorical_columns(tmp_path: Path) -> None:
    text = "id,amount,channel,country,flag\n1,12.5,online,DE,0\n2,,shop,,1\n"
    mapping = ColumnMapping(kind="transaction", id_column="id", label_column="flag")
    records, problems = read(write(tmp_path, text), mapping)
    assert problems == []
    assert records[0]["numeric"] == {"amount": 12.5}
    assert records[0]["categorical"] == {"channel": "online", "country": "DE"}
    assert records[1]["categorical"] == {"channel": "shop"}
    assert [r["label"] for r in records] == ["0", "1"]
    assert "product" not in records[0]


def test_jsonl_typed_values_and_bad_lines(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "ts": 1_764_000_000_000, "v": 1, "w": None, "label": 1.0},
        "not json",
        {"id": "b", "ts": 1_764_000_000, "v": "2.5", "w": True, "label": "x"},
        [1, 2],
        {"id": "c", "ts": "2025-11-24T16:00:00", "v": None, "w": 3, "label": "y"},
    ]
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    mapping = ColumnMapping(id_column="id", ts_column="ts", label_column="label", product="P")
    records, problems = read(write(tmp_path, text, "d.jsonl"), mapping, "jsonl")
    assert records == [
        {
            "schema_version": 1,
            "kind": "parametric",
            "record_id": "a",
            "ts": "2025-11-24T16:00:00Z",
            "label": "1",
            "product": "P",
            "measurements": {"v": 1.0, "w": None},
        },
        {
            "schema_version": 1,
            "kind": "parametric",
            "record_id": "c",
            "ts": "2025-11-24T16:00:00Z",
            "label": "y",
            "product": "P",
            "measurements": {"v": None, "w": 3.0},
        },
    ]
    assert [(p.position, p.kind) for p in problems] == [
        ("line 2", "bad json"),
        ("line 3, column 'w'", "wrong type"),
        ("line 4", "bad json"),
    ]


def test_gzipped_csv_reads_like_the_plain_file(tmp_path: Path) -> None:
    path = tmp_path / "data.csv.gz"
    path.write_bytes(gzip.compress(CSV.encode()))
    assert read(path, MAPPING) == read(write(tmp_path, CSV), MAPPING)


def test_a_file_that_is_not_utf8_stops_with_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(CSV.encode() + "s3,2026-11-24T10:15:04Z,caf\xe9".encode("latin-1"))
    records, problems = read(path, MAPPING)
    assert len(records) == 2
    assert [(p.position, p.kind) for p in problems] == [("line 4", "not utf-8")]
    assert "0xe9" in problems[0].reason


def test_without_any_product_a_file_is_one_problem_not_one_per_row(tmp_path: Path) -> None:
    # A file found by --follow: the command line was checked before, the file is not.
    items = list(TabularSource(write(tmp_path, CSV), ColumnMapping(id_column="serial"), "csv"))
    assert [(type(i), getattr(i, "kind", None)) for i in items] == [(Problem, "no product")]
    assert isinstance(items[0], Problem) and "--product-column" in items[0].reason
    assert product_problem(ColumnMapping(kind="transaction")) is None
    assert product_problem(ColumnMapping(product="P")) is None
