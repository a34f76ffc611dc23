"""STDF V4 files, written by the tests themselves, into parametric records and problems."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from consumers.produce.items import NotRegularFile, Parsed, Problem
from consumers.produce.stdf.source import LabelFrom, StdfSource, measurement_name
from stream_al.codec import decode_record
from tests.stdf_writer import NOT_EXECUTED, PART_FAILED, RESULT_INVALID, StdfWriter


def read(path: Path, label_from: LabelFrom = "none") -> tuple[list[dict[str, Any]], list[Problem]]:
    items = list(StdfSource(path, label_from))
    records = [i.record for i in items if isinstance(i, Parsed)]
    return records, [i for i in items if isinstance(i, Problem)]


def wafer_file(parts: int = 3) -> StdfWriter:
    w = StdfWriter()
    w.mir(lot_id="L123", part_typ="PMIC-A7", node_nam="T-093", job_nam="FT", job_rev="3.2")
    w.wir("W07", start_t=1_700_000_100)
    for i in range(parts):
        texts = {100: "VDD core", 200: "IDD static"} if i == 0 else None
        w.part({100: 0.9 + i, 200: 1.5}, texts, x=10 + i, y=33, site=0, part_id=str(i + 1))
    w.wrr("W07", parts=parts)
    w.mrr()
    return w


def test_one_record_per_part_with_the_mir_wir_and_prr_fields(tmp_path: Path) -> None:
    records, problems = read(wafer_file(3).write(tmp_path / "lot.stdf"))
    assert problems == []
    assert [r["die_x"] for r in records] == [10, 11, 12]
    first = records[0]
    assert first["product"] == "PMIC-A7" and first["lot_id"] == "L123"
    assert first["wafer_id"] == "W07" and first["tester_id"] == "T-093"
    assert first["test_program"] == "FT_v3.2" and first["ts"] == "2023-11-14T22:15:00Z"
    assert (first["die_y"], first["site"], first["hard_bin"], first["soft_bin"]) == (33, 0, 1, 1)
    assert first["label"] is None


def test_test_text_given_once_names_the_test_in_every_part(tmp_path: Path) -> None:
    records, _ = read(wafer_file(3).write(tmp_path / "lot.stdf"))
    names = {"vdd_core_t100", "idd_static_t200"}
    assert [set(r["measurements"]) for r in records] == [names, names, names]
    assert records[2]["measurements"]["vdd_core_t100"] == pytest.approx(2.9)


def test_measurement_names_are_unique_by_test_number() -> None:
    assert measurement_name("VDD", 1) != measurement_name("VDD", 2)
    assert measurement_name("  Leak <> pin2 ", 30) == "leak_pin2_t30"


def test_results_flagged_invalid_not_executed_or_nan_are_none(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir()
    w.pir()
    w.ptr(1, 1.0, "ok")
    w.ptr(2, 5.0, "invalid", test_flg=RESULT_INVALID)
    w.ptr(3, 5.0, "skipped", test_flg=NOT_EXECUTED)
    w.ptr(4, math.nan, "nan")
    w.prr(part_id="1")
    records, problems = read(w.write(tmp_path / "m.stdf"))
    assert problems == []
    assert records[0]["measurements"] == {
        "ok_t1": 1.0,
        "invalid_t2": None,
        "skipped_t3": None,
        "nan_t4": None,
    }


@pytest.mark.parametrize(
    ("label_from", "expected"),
    [
        ("none", [None, None, None]),
        ("pass_fail", ["pass", "fail", None]),
        ("hard_bin", ["1", "5", "7"]),
        ("soft_bin", ["11", "55", "77"]),
    ],
)
def test_label_from_the_part_result(
    tmp_path: Path, label_from: LabelFrom, expected: list[str | None]
) -> None:
    w = StdfWriter()
    w.mir()
    for flags, hard in ((0, 1), (PART_FAILED, 5), (0x10, 7)):  # 0x10: no pass/fail verdict
        w.part({1: 1.0}, part_flg=flags, hard_bin=hard, soft_bin=hard * 11)
    records, _ = read(w.write(tmp_path / "l.stdf"), label_from)
    assert [r["label"] for r in records] == expected


def test_multi_site_parts_are_kept_apart_by_head_and_site(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir()
    w.pir(site=0)
    w.pir(site=1)
    w.ptr(1, 10.0, "a", site=0)
    w.ptr(1, 11.0, "a", site=1)
    w.ptr(2, 21.0, "b", site=1)
    w.ptr(2, 20.0, "b", site=0)
    w.prr(site=1, x=2, y=2, part_id="2")
    w.prr(site=0, x=1, y=1, part_id="1")
    records, problems = read(w.write(tmp_path / "ms.stdf"))
    assert problems == []
    assert [(r["site"], r["die_x"], r["measurements"]) for r in records] == [
        (1, 2, {"a_t1": 11.0, "b_t2": 21.0}),
        (0, 1, {"a_t1": 10.0, "b_t2": 20.0}),
    ]


def test_record_ids_are_stable_across_runs_and_unique(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir(lot_id="L1")
    w.wir("W2")
    w.part({1: 1.0}, part_id="7")
    w.part({1: 1.0}, part_id="7")  # a tester that repeats PART_ID
    w.part({1: 1.0}, x=3, y=-4, site=0)
    path = w.write(tmp_path / "ids.stdf")
    ids = [r["record_id"] for r in read(path)[0]]
    assert ids == ["L1-W2-P7-00001", "L1-W2-P7-00002", "L1-W2-X3-Y-4-S0-00003"]
    assert [r["record_id"] for r in read(path)[0]] == ids


def lotless_file() -> StdfWriter:
    w = StdfWriter()
    w.mir(lot_id="")
    w.wir("W2")
    w.ptr(9, 0.0)  # outside any part: the first item out is a problem, not a record
    for i in range(3):
        w.part({1: float(i)}, part_id=str(i + 1))
    w.mrr()
    return w


def test_without_a_lot_id_the_content_hash_stands_in_for_it(tmp_path: Path) -> None:
    path = lotless_file().write(tmp_path / "TESTER7_20261124.stdf")
    content = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert [r["record_id"] for r in read(path)[0]] == [
        f"{content}-W2-P1-00001",
        f"{content}-W2-P2-00002",
        f"{content}-W2-P3-00003",
    ]


def test_record_ids_of_a_file_its_renamed_copy_and_a_copy_are_identical(
    tmp_path: Path,
) -> None:
    path = lotless_file().write(tmp_path / "a.stdf")
    ids = [r["record_id"] for r in read(path)[0]]
    shutil.copy(path, tmp_path / "copy.stdf")
    path.rename(tmp_path / "renamed.stdf")
    assert [r["record_id"] for r in read(tmp_path / "renamed.stdf")[0]] == ids
    assert [r["record_id"] for r in read(tmp_path / "copy.stdf")[0]] == ids


def test_a_file_renamed_while_it_is_read_keeps_one_set_of_ids(tmp_path: Path) -> None:
    path = lotless_file().write(tmp_path / "a.stdf")
    expected = [r["record_id"] for r in read(path)[0]]
    items = iter(StdfSource(path))
    first = next(items)  # the file is open, no id made yet
    path.rename(tmp_path / "b.stdf")
    assert isinstance(first, Problem)
    assert [i.record["record_id"] for i in items if isinstance(i, Parsed)] == expected


def test_a_given_content_hash_is_used_for_the_ids(tmp_path: Path) -> None:
    path = lotless_file().write(tmp_path / "a.stdf")
    items = StdfSource(path, content_sha256="cd" * 32)
    ids = [i.record["record_id"] for i in items if isinstance(i, Parsed)]
    assert ids[0] == "cdcdcdcdcdcdcdcd-W2-P1-00001"


@pytest.mark.timeout(30)
def test_a_fifo_or_a_refused_link_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.stdf")
    with pytest.raises(NotRegularFile):
        list(StdfSource(tmp_path / "pipe.stdf", fallback_ts=0))
    link = tmp_path / "link.stdf"
    link.symlink_to(wafer_file(1).write(tmp_path / "real.stdf"))
    assert len(read(link)[0]) == 1
    with pytest.raises(OSError, match="link"):
        list(StdfSource(link, follow_symlinks=False))


def test_every_record_passes_the_codec(tmp_path: Path) -> None:
    import json

    records, _ = read(wafer_file(2).write(tmp_path / "v.stdf"), "pass_fail")
    decoded = [decode_record(json.dumps(r).encode()) for r in records]
    assert [d.record_id for d in decoded] == [r["record_id"] for r in records]


def test_gzip_and_big_endian_files_read_the_same(tmp_path: Path) -> None:
    plain, _ = read(wafer_file(2).write(tmp_path / "a.stdf"))
    zipped, _ = read(wafer_file(2).write(tmp_path / "a.stdf.gz"))
    big = StdfWriter(cpu_type=1)
    big.mir(lot_id="L123", part_typ="PMIC-A7", node_nam="T-093", job_nam="FT", job_rev="3.2")
    big.wir("W07", start_t=1_700_000_100)
    big.part({100: 0.9}, {100: "VDD core"}, x=10, y=33, part_id="1")
    big_records, problems = read(big.write(tmp_path / "b.stdf"))
    assert zipped == plain and problems == []
    assert big_records[0]["measurements"] == {"vdd_core_t100": pytest.approx(0.9)}
    assert big_records[0]["record_id"] == plain[0]["record_id"]


def test_file_cut_inside_a_part_keeps_the_complete_parts(tmp_path: Path) -> None:
    w = wafer_file(2)
    third_part_at = w.offset
    w.pir()
    w.ptr(100, 1.0)
    data = w.to_bytes()[:-3]  # the last PTR is cut short
    path = tmp_path / "cut.stdf"
    path.write_bytes(data)
    records, problems = read(path)
    assert len(records) == 2
    assert [(p.kind, p.position) for p in problems] == [
        ("truncated", f"byte {third_part_at + 6}"),
        ("truncated", f"part 3 at byte {third_part_at}"),
    ]
    assert all(p.file == str(path) for p in problems)


def test_truncated_gzip_is_reported_with_the_part(tmp_path: Path) -> None:
    data = gzip.compress(wafer_file(200).to_bytes())
    path = tmp_path / "cut.stdf.gz"
    path.write_bytes(data[: len(data) // 2])
    records, problems = read(path)
    assert 0 < len(records) < 200
    assert problems[0].kind == "truncated" and "(uncompressed)" in problems[0].position
    assert problems[-1].position.startswith(f"part {len(records) + 1} at byte")


def test_undecodable_record_costs_only_its_part(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir()
    w.part({1: 1.0}, {1: "a"}, part_id="1")
    bad_at = w.offset
    w.pir()
    w.ptr(1, 2.0, b"\xff\xfe")  # TEST_TXT is ASCII; these bytes cannot be decoded
    w.prr(part_id="2")
    w.part({1: 3.0}, part_id="3")
    records, problems = read(w.write(tmp_path / "bad.stdf"))
    assert [r["part_id"] for r in records] == ["1", "3"]
    assert [p.kind for p in problems] == ["undecodable record", "undecodable record"]
    assert problems[0].position == f"byte {bad_at + 6}"
    assert problems[1].position == f"part 2 at byte {bad_at}"


def test_pir_without_prr_and_results_outside_parts_are_reported(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir()
    w.ptr(1, 1.0, "stray")
    w.pir()
    w.part({1: 2.0}, part_id="2")
    w.prr(site=5)
    records, problems = read(w.write(tmp_path / "odd.stdf"))
    assert [r["part_id"] for r in records] == ["2"]
    assert [p.kind for p in problems] == [
        "result outside a part",
        "part without PRR",
        "part without PIR",
    ]
    assert problems[1].position.startswith("part 1 at byte")


def test_not_stdf_and_wrong_version_are_reported_at_the_start(tmp_path: Path) -> None:
    text = tmp_path / "notes.stdf"
    text.write_text("lot,part\n1,2\n")
    v3 = tmp_path / "v3.stdf"
    v3.write_bytes(b"\x02\x00\x00\x0a\x02\x03")
    assert [(p.kind, p.position) for p in read(text)[1]] == [("not stdf", "byte 0")]
    assert "version 3" in read(v3)[1][0].reason


def test_lost_framing_stops_after_a_few_unknown_records(tmp_path: Path) -> None:
    w = wafer_file(1)
    w.raw(bytes([1, 0, 99, 99, 0]) * 50)
    w.part({100: 1.0}, part_id="late")
    records, problems = read(w.write(tmp_path / "garbage.stdf"))
    assert len(records) == 1
    assert [p.kind for p in problems] == ["unknown record"] * 10 + ["corrupt"]
