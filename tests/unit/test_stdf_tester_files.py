"""STDF files as testers really write them, written here: an empty PART_TYP, MPRs with
PMR pin names, FTRs, limits given once, parts with no parametric result, retests.

Each test writes its own file and checks the records field by field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from consumers.produce.items import Parsed, Problem
from consumers.produce.stdf.retests import SeenParts
from consumers.produce.stdf.source import FtrMode, MprMode, StdfSource
from stream_al.codec import decode_record, encode
from stream_al.errors import DecodeError
from stream_al.records import ParametricRecord, TestLimits
from tests.stdf_writer import (
    HI_NOT_HERE,
    LO_NOT_HERE,
    NO_PASS_FAIL,
    OPT_FLAG_LIMITS,
    PART_FAILED,
    RESULT_INVALID,
    RETEST_OF_DIE,
    TEST_FAILED,
    StdfWriter,
)


def read(
    path: Path,
    *,
    product: str | None = None,
    mpr: MprMode = "summary",
    ftr: FtrMode = "pass_fail",
    seen: SeenParts | None = None,
) -> tuple[list[dict[str, Any]], list[Problem], list[str]]:
    """Records, problems and the warnings ``warn`` was given while reading."""
    told: list[str] = []
    source = StdfSource(path, product=product, mpr=mpr, ftr=ftr, warn=told.append, seen=seen)
    items = list(source)
    assert source.warnings == told
    records = [i.record for i in items if isinstance(i, Parsed)]
    return records, [i for i in items if isinstance(i, Problem)], told


def sha8(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


# --- 1. A MIR that leaves PART_TYP empty ------------------------------------------------


def program_file(part_typ: str = "", job_nam: str = "XYZ_WS_2_0_25C.tpg") -> StdfWriter:
    w = StdfWriter()
    w.mir(lot_id="L9", part_typ=part_typ, job_nam=job_nam, job_rev="")
    w.wir("W1")
    for i in range(3):
        w.part({1: 1.0 + i}, {1: "vdd"}, x=i, y=0)
    w.mrr()
    return w


def test_an_empty_part_typ_takes_the_product_from_job_nam_with_one_warning(
    tmp_path: Path,
) -> None:
    records, problems, warnings = read(program_file().write(tmp_path / "w.stdf"))
    assert problems == []
    assert [r["product"] for r in records] == ["XYZ_WS_2_0_25C"] * 3
    assert [r["test_program"] for r in records] == ["XYZ_WS_2_0_25C.tpg"] * 3
    assert warnings == [
        "the MIR has no PART_TYP: product 'XYZ_WS_2_0_25C' from JOB_NAM "
        "'XYZ_WS_2_0_25C.tpg' (pass --product to name it)"
    ]
    assert all(isinstance(decode_record(json.dumps(r).encode()), ParametricRecord)
               for r in records)


@pytest.mark.parametrize(
    ("part_typ", "given", "job_nam", "product", "said"),
    [
        ("PMIC-A7", "OTHER", "J.tpg", "PMIC-A7", None),
        ("", "PMIC-B1", "J.tpg", "PMIC-B1", "from --product"),
        ("   ", "PMIC-B1", "J.tpg", "PMIC-B1", "from --product"),
        ("", None, "progs/J_FT.tpg", "J_FT", "from JOB_NAM 'progs/J_FT.tpg'"),
        ("", None, "", "lot7", "from the file name"),
        ("", None, "  ", "lot7", "from the file name"),
    ],
)
def test_the_product_falls_back_in_the_documented_order(
    tmp_path: Path, part_typ: str, given: str | None, job_nam: str, product: str,
    said: str | None,
) -> None:
    path = program_file(part_typ, job_nam).write(tmp_path / "lot7.stdf.gz")
    records, _, warnings = read(path, product=given)
    assert {r["product"] for r in records} == {product}
    if said is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and said in warnings[0] and repr(product) in warnings[0]


def test_empty_mir_and_wir_strings_mean_absent(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir(lot_id=" ", part_typ="P", node_nam="", tstr_typ="", job_nam="", job_rev="3")
    w.wir("  ")
    w.part({1: 1.0}, part_id="4")
    path = w.write(tmp_path / "blank.stdf")
    records, problems, _ = read(path)
    assert problems == []
    (record,) = records
    assert (record["lot_id"], record["wafer_id"]) == (None, None)
    assert (record["tester_id"], record["test_program"]) == (None, None)
    content = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert record["record_id"] == f"{content}-P4-00001"  # no "--" for the empty wafer


# --- 2. MPR, FTR, and limits given once -------------------------------------------------


def floor_file() -> StdfWriter:
    """Two parts as a 93000-style program writes them: PTR, MPR and FTR, the limits,
    units, texts and pin list only on each test's first record."""
    w = StdfWriter()
    w.mir(lot_id="L5", part_typ="PMIC-A7", job_nam="FT", job_rev="1")
    w.pmr(1, log_nam="VDD_A", phy_nam="ch17")
    w.pmr(2, phy_nam="ch18")  # no logical name: the physical one
    w.pmr(3)  # no name at all: the index
    w.wir("W3")
    w.pir()
    w.ptr(100, 0.91, "VDD core", limits=(0.8, 1.0, "V"))
    w.ptr(110, 3.5, "IDD", limits=(None, 4.0, "mA"))  # no low limit
    w.ptr(120, 7.0, "temp")  # a test with no limits in any record
    w.mpr(500, [1e-6, 2e-6, 3e-6], "Leak pins", pins=[1, 2, 3], limits=(0.0, 5e-6, "A"))
    w.ftr(600, "scan chain")
    w.ftr(610, "bist", test_flg=TEST_FAILED)
    w.prr(x=4, y=5, part_id="1", part_flg=PART_FAILED, hard_bin=7, soft_bin=71)
    w.pir()
    w.ptr(100, 0.95)
    w.ptr(110, 3.0, opt_flag=OPT_FLAG_LIMITS | LO_NOT_HERE | HI_NOT_HERE)  # "see the first"
    w.ptr(120, 6.5)
    w.mpr(500, [4e-6, 1e-6, 2e-6])  # RTN_INDX left out: the first MPR's pins
    w.ftr(600)
    w.ftr(610, test_flg=NO_PASS_FAIL)  # ran, but no verdict
    w.prr(x=5, y=5, part_id="2")
    w.mrr()
    return w


LIMITS_100 = {"lo": 0.8, "hi": 1.0, "units": "V"}
LIMITS_110 = {"lo": None, "hi": 4.0, "units": "mA"}
LIMITS_500 = {"lo": 0.0, "hi": 5e-6, "units": "A"}


def test_every_field_of_an_mpr_ftr_part_with_pins(tmp_path: Path) -> None:
    records, problems, warnings = read(floor_file().write(tmp_path / "f.stdf"), mpr="pins")
    assert problems == [] and warnings == []
    assert records[0] == {
        "schema_version": 1,
        "kind": "parametric",
        "record_id": "L5-W3-P1-00001",
        "ts": "2023-11-14T22:15:00Z",
        "product": "PMIC-A7",
        "test_program": "FT_v1",
        "tester_id": "T-093",
        "site": 0,
        "lot_id": "L5",
        "wafer_id": "W3",
        "die_x": 4,
        "die_y": 5,
        "measurements": {
            "vdd_core_t100": 0.91,
            "idd_t110": 3.5,
            "temp_t120": 7.0,
            "leak_pins_t500@VDD_A": 1e-6,
            "leak_pins_t500@ch18": 2e-6,
            "leak_pins_t500@3": 3e-6,
            "scan_chain_t600": 1.0,
            "bist_t610": 0.0,
        },
        "limits": {
            "vdd_core_t100": LIMITS_100,
            "idd_t110": LIMITS_110,
            "leak_pins_t500@VDD_A": LIMITS_500,
            "leak_pins_t500@ch18": LIMITS_500,
            "leak_pins_t500@3": LIMITS_500,
        },
        "label": None,
        "hard_bin": 7,
        "soft_bin": 71,
        "failed_tests": ["bist_t610"],
        "no_parametric": False,
        "retest": False,
        "part_id": "1",
    }


def test_the_second_part_gets_the_names_pins_and_limits_given_once(tmp_path: Path) -> None:
    records, _, _ = read(floor_file().write(tmp_path / "f.stdf"), mpr="pins")
    second = records[1]
    assert second["measurements"] == {
        "vdd_core_t100": 0.95,
        "idd_t110": 3.0,
        "temp_t120": 6.5,
        "leak_pins_t500@VDD_A": 4e-6,
        "leak_pins_t500@ch18": 1e-6,
        "leak_pins_t500@3": 2e-6,
        "scan_chain_t600": 1.0,
        "bist_t610": None,
    }
    assert second["limits"] == records[0]["limits"]
    assert (second["failed_tests"], second["hard_bin"], second["record_id"]) == (
        [], 1, "L5-W3-P2-00002")


def test_mpr_summary_is_the_default_min_max_mean_per_test(tmp_path: Path) -> None:
    records, _, _ = read(floor_file().write(tmp_path / "f.stdf"))
    mpr = [{k: v for k, v in r["measurements"].items() if "@" in k} for r in records]
    assert mpr == [
        {"leak_pins_t500@min": 1e-6, "leak_pins_t500@max": 3e-6, "leak_pins_t500@mean": 2e-6},
        {"leak_pins_t500@min": 1e-6, "leak_pins_t500@max": 4e-6,
         "leak_pins_t500@mean": pytest.approx(7e-6 / 3, rel=1e-6)},
    ]
    assert {k: v for k, v in records[0]["limits"].items() if "@" in k} == {
        f"leak_pins_t500@{stat}": LIMITS_500 for stat in ("min", "max", "mean")
    }


def test_mpr_none_and_ftr_none_leave_them_out_but_keep_the_failing_tests(
    tmp_path: Path,
) -> None:
    records, _, _ = read(floor_file().write(tmp_path / "f.stdf"), mpr="none", ftr="none")
    assert list(records[0]["measurements"]) == ["vdd_core_t100", "idd_t110", "temp_t120"]
    assert list(records[0]["limits"]) == ["vdd_core_t100", "idd_t110"]
    assert records[0]["failed_tests"] == ["bist_t610"]


def test_limits_come_from_the_first_record_that_states_them(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir()
    w.pir()
    w.ptr(1, 1.0, "a")  # the first PTR of test 1 stops before OPT_FLAG
    w.ptr(2, 2.0, "b", limits=(1.0, 3.0, "V"),
          opt_flag=OPT_FLAG_LIMITS | LO_NOT_HERE)  # its first, yet LO "not here"
    w.prr()
    w.pir()
    w.ptr(1, 1.5, limits=(0.5, 2.5, ""))  # the first that states them: no units
    w.ptr(2, 2.5, limits=(9.0, 9.0, "mV"))  # not the first: ignored
    w.prr()
    records, _, _ = read(w.write(tmp_path / "l.stdf"))
    assert [r["limits"] for r in records] == [
        {"b_t2": {"lo": None, "hi": 3.0, "units": "V"}},
        {"a_t1": {"lo": 0.5, "hi": 2.5, "units": None},
         "b_t2": {"lo": None, "hi": 3.0, "units": "V"}},
    ]


def test_a_huge_limit_means_none_but_a_huge_result_is_refused_by_name(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir()
    w.pir()
    w.ptr(1, 1.0, "a", limits=(-1e30, 1e30, "V"))  # how some testers say "no limit"
    w.prr(part_id="1")
    w.pir()
    w.ptr(1, 1e30)
    w.prr(part_id="2")
    records, _, _ = read(w.write(tmp_path / "huge.stdf"))
    assert records[0]["limits"] == {"a_t1": {"lo": None, "hi": None, "units": "V"}}
    with pytest.raises(DecodeError) as refused:
        decode_record(json.dumps(records[1]).encode())
    assert refused.value.reason.startswith("measurements.a_t1: measurement is 1e+30")


def test_limits_decode_as_test_limits_keyed_by_measurement(tmp_path: Path) -> None:
    records, _, _ = read(floor_file().write(tmp_path / "f.stdf"))
    decoded = decode_record(json.dumps(records[0]).encode())
    assert isinstance(decoded, ParametricRecord) and decoded.limits is not None
    assert decoded.limits["idd_t110"] == TestLimits(lo=None, hi=4.0, units="mA")
    assert decoded.limits.keys() <= decoded.measurements.keys()
    assert (decoded.hard_bin, decoded.soft_bin, decoded.failed_tests) == (7, 71, ["bist_t610"])
    assert json.loads(encode(decoded))["limits"]["vdd_core_t100"] == LIMITS_100


# --- 3. Parts with no parametric result -------------------------------------------------


def test_a_part_with_no_parametric_result_is_sent_and_flagged(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir()
    w.wir("W1")
    w.part({1: 1.0}, {1: "vdd"}, x=1, y=1)  # measured
    w.pir()  # the flow stopped before any PTR
    w.prr(x=2, y=1, part_flg=PART_FAILED, hard_bin=5)
    w.pir()  # its only PTR has no valid result; an FTR is not parametric
    w.ptr(1, 9.0, test_flg=RESULT_INVALID | TEST_FAILED)
    w.ftr(9, "func")
    w.prr(x=3, y=1)
    records, problems, _ = read(w.write(tmp_path / "n.stdf"))
    assert problems == []
    assert [(r["die_x"], r["no_parametric"]) for r in records] == [(1, False), (2, True), (3, True)]
    stopped = records[1]
    assert (stopped["measurements"], stopped["limits"], stopped["failed_tests"]) == ({}, None, None)
    assert (stopped["hard_bin"], stopped["record_id"]) == (5, "LOT1-W1-X2-Y1-S0-00002")
    assert records[2]["measurements"] == {"vdd_t1": None, "func_t9": 1.0}
    assert records[2]["failed_tests"] == ["vdd_t1"]
    decoded = decode_record(json.dumps(stopped).encode())
    assert isinstance(decoded, ParametricRecord) and decoded.no_parametric is True


# --- 4. Retests -------------------------------------------------------------------------


def wafer(rtst_cod: str = " ", part_flg: int = 0, values: tuple[float, ...] = (1.0, 2.0),
          wafer_id: str = "W1") -> StdfWriter:
    w = StdfWriter()
    w.mir(lot_id="L7", rtst_cod=rtst_cod, sblot_id="S1")
    w.wir(wafer_id)
    for x, value in enumerate(values):
        w.part({1: value}, {1: "vdd"}, x=x, y=0, part_flg=part_flg)
    w.mrr()
    return w


def test_a_retest_in_another_file_gets_its_own_ids_and_the_flag(tmp_path: Path) -> None:
    first = wafer().write(tmp_path / "first.stdf")
    again = wafer(values=(1.5, 2.5)).write(tmp_path / "retest.stdf")
    seen = SeenParts()
    originals, _, _ = read(first, seen=seen)
    retests, _, _ = read(again, seen=seen)
    assert [(r["record_id"], r["retest"]) for r in originals] == [
        ("L7-W1-X0-Y0-S0-00001", False), ("L7-W1-X1-Y0-S0-00002", False)]
    tag = sha8(again)
    assert [(r["record_id"], r["retest"]) for r in retests] == [
        (f"L7-W1-X0-Y0-S0-00001-R{tag}", True), (f"L7-W1-X1-Y0-S0-00002-R{tag}", True)]
    assert [r["measurements"]["vdd_t1"] for r in retests] == [1.5, 2.5]
    # The first file read again (a retry) is not a retest of itself.
    assert [r["record_id"] for r in read(first, seen=seen)[0]] == [
        r["record_id"] for r in originals]


def test_another_wafer_of_the_lot_is_not_a_retest(tmp_path: Path) -> None:
    seen = SeenParts()
    read(wafer().write(tmp_path / "w1.stdf"), seen=seen)
    records, _, _ = read(wafer(wafer_id="W2").write(tmp_path / "w2.stdf"), seen=seen)
    assert [r["retest"] for r in records] == [False, False]


@pytest.mark.parametrize(("rtst_cod", "part_flg"), [("1", 0), ("Y", 0), (" ", RETEST_OF_DIE)])
def test_a_file_that_says_it_is_a_retest_is_one_on_its_own(
    tmp_path: Path, rtst_cod: str, part_flg: int
) -> None:
    path = wafer(rtst_cod, part_flg).write(tmp_path / "r.stdf")
    records, _, _ = read(path)
    assert [(r["record_id"], r["retest"]) for r in records] == [
        (f"L7-W1-X0-Y0-S0-00001-R{sha8(path)}", True),
        (f"L7-W1-X1-Y0-S0-00002-R{sha8(path)}", True),
    ]


def test_remembered_parts_are_bounded() -> None:
    seen = SeenParts(capacity=100)
    for n in range(1000):
        assert not seen.in_another_file(("L", n), "a")
    assert len(seen) <= 100
    assert seen.in_another_file(("L", 999), "b") and not seen.in_another_file(("L", 999), "a")


def test_a_dry_run_records_no_part_so_no_later_file_is_its_retest(tmp_path: Path) -> None:
    """``stream-al produce --dry-run`` in separate processes, one state dir between them:
    what a dry run printed was never sent, so the next file is no retest of it (the
    broker test shows a published file's parts remembered across runs)."""
    import os
    import subprocess
    import sys

    first = wafer().write(tmp_path / "first.stdf")
    again = wafer(values=(1.5, 2.5)).write(tmp_path / "retest.stdf")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_AL_")}
    env["STREAM_AL_STATE_DIR"] = str(tmp_path / "state")

    def produce(path: Path) -> list[tuple[str, bool]]:
        done = subprocess.run([sys.executable, "-m", "consumers", "produce", "--dry-run",
                               str(path)], capture_output=True, text=True, env=env,
                              timeout=120, check=True, stdin=subprocess.DEVNULL)
        return [(r["record_id"], r.get("retest", False))
                for r in map(json.loads, done.stdout.splitlines())]

    originals = [("L7-W1-X0-Y0-S0-00001", False), ("L7-W1-X1-Y0-S0-00002", False)]
    assert produce(first) == originals
    assert produce(again) == originals  # its own content, yet no retest of a dry run
    assert not (tmp_path / "state" / "produce-parts.jsonl").exists()


def test_parts_seen_survive_a_restart_and_a_torn_last_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen = SeenParts(state_dir=state)
    assert not seen.in_another_file(("L", 1), "a") and not seen.in_another_file(("L", 2), "a")
    seen.save()
    stored = state / "produce-parts.jsonl"
    assert stored.stat().st_mode & 0o777 == 0o600
    with stored.open("ab") as f:
        f.write(b'{"file": "b", "parts": ["00')  # a crash in the middle of a line
    later = SeenParts(state_dir=state)
    assert later.in_another_file(("L", 1), "b") and not later.in_another_file(("L", 1), "a")
    assert not later.in_another_file(("L", 3), "b")
    later.save()  # on a line of its own, after the torn one
    assert SeenParts(state_dir=state).in_another_file(("L", 3), "c")


def test_the_file_of_parts_seen_stays_bounded(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen = SeenParts(capacity=100, state_dir=state)
    for n in range(1000):
        assert not seen.in_another_file(("L", n), f"file-{n // 10}")
        if n % 10 == 9:
            seen.save()  # one file of ten parts at a time
    lines = (state / "produce-parts.jsonl").read_text().splitlines()
    assert sum(len(json.loads(line)["parts"]) for line in lines) <= 125
    later = SeenParts(capacity=100, state_dir=state)
    assert len(later) <= 100
    assert later.in_another_file(("L", 999), "x")  # the newest are the ones kept


def test_the_parts_seen_are_never_read_through_a_link(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "elsewhere").write_text("")
    (state / "produce-parts.jsonl").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        SeenParts(state_dir=state)
