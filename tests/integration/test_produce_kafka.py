"""``stream-al produce`` into a real Apache Kafka: exactly the parts of the file come back."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from typer.testing import CliRunner

from consumers.cli import build_cli
from stream_al.codec import decode_record
from stream_al.records import ParametricRecord, TestLimits
from tests.clients_support import CLIENTS
from tests.stdf_writer import PART_FAILED, StdfWriter

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """produce remembers the parts it has seen in the state dir: each test its own."""
    monkeypatch.setenv("STREAM_AL_STATE_DIR", str(tmp_path / "state"))

PARTS = 40
_HANG_GUARD_S = 60.0  # only stops a broken test from hanging; never asserted on


def two_site_wafer(path: Path) -> Path:
    w = StdfWriter()
    w.mir(lot_id="LOTK", part_typ="PMIC-A7", node_nam="T-7")
    w.wir("W3")
    for i in range(0, PARTS, 2):  # two sites tested side by side, records interleaved
        w.pir(site=0)
        w.pir(site=1)
        for site in (0, 1):
            w.ptr(10, float(i + site), "vdd", site=site)
        w.prr(site=1, x=i + 1, y=0, part_id=str(i + 2), part_flg=PART_FAILED)
        w.prr(site=0, x=i, y=0, part_id=str(i + 1))
    w.mrr()
    return w.write(path)


def consume(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2_000,
    )
    got: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + _HANG_GUARD_S
    while len(got) < expected and time.monotonic() < deadline:
        got += [(m.key, m.value) for m in consumer]
    got += [(m.key, m.value) for m in consumer]  # anything extra would show up here
    consumer.close()
    return got


@pytest.mark.parametrize("kafka_client", CLIENTS)
def test_produce_sends_exactly_the_parts_of_an_stdf_file(
    tmp_path: Path,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    create_topic: Callable[[str, int], str],
    kafka_client: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAM_AL_KAFKA__CLIENT", kafka_client)
    topic = create_topic(unique_topic("parametric"), 3)
    path = two_site_wafer(tmp_path / "wafer.stdf")
    result = CliRunner().invoke(
        build_cli(),
        [
            "produce",
            "--topic",
            topic,
            "--bootstrap-servers",
            kafka_bootstrap,
            "--label-from",
            "pass_fail",
            "--key",
            "record_id",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    messages = consume(kafka_bootstrap, topic, PARTS)
    records = [decode_record(value) for _, value in messages]
    assert all(isinstance(r, ParametricRecord) for r in records)
    by_part = {(r.model_extra or {})["part_id"]: r for r in records}
    assert len(records) == PARTS and set(by_part) == {str(i) for i in range(1, PARTS + 1)}
    assert all(key.decode() == r.record_id for (key, _), r in zip(messages, records, strict=True))
    assert by_part["2"].label == "fail" and by_part["1"].label == "pass"
    assert by_part["2"].model_dump()["measurements"] == {"vdd_t10": 1.0}


def test_follow_sends_a_file_once_though_it_is_renamed_copied_and_restarted(
    tmp_path: Path,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    create_topic: Callable[[str, int], str],
) -> None:
    topic = create_topic(unique_topic("parametric"), 3)
    drop = tmp_path / "drop"
    drop.mkdir()
    wafer = two_site_wafer(drop / "wafer.stdf")
    (drop / "rows.csv").write_text("v\n" + "".join(f"{i}.5\n" for i in range(10)))
    (drop / "passwd.csv").symlink_to("/etc/passwd")

    def follow() -> str:
        result = CliRunner().invoke(
            build_cli(),
            ["produce", "--topic", topic, "--bootstrap-servers", kafka_bootstrap,
             "--product", "PMIC-A7", "--follow", str(drop), "--state-dir", str(tmp_path / "s"),
             "--polls", "3", "--poll-interval", "0.05", "--settle", "0"],
        )
        assert result.exit_code == 0, result.output
        return result.stderr

    assert "passwd.csv: skipped: a symbolic link" in follow()
    wafer.rename(drop / "wafer-renamed.stdf")
    (drop / "rows-copy.csv").write_bytes((drop / "rows.csv").read_bytes())
    follow()  # a restart: the renamed and the copied file are known by their content
    messages = consume(kafka_bootstrap, topic, PARTS + 10)
    ids = [decode_record(value).record_id for _, value in messages]
    assert len(ids) == PARTS + 10 == len(set(ids))


def test_limits_flags_and_retest_ids_arrive_through_the_broker(
    tmp_path: Path,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    create_topic: Callable[[str, int], str],
) -> None:
    topic = create_topic(unique_topic("parametric"), 3)
    files = []
    for name, value in (("first.stdf", 1.0), ("retest.stdf", 1.5)):
        w = StdfWriter()
        w.mir(lot_id="LOTR", part_typ="", job_nam="XYZ_WS_2_0_25C.tpg")
        w.pmr(1, "DQ0")  # pin 2 has no PMR: named by its index
        w.wir("W1")
        w.pir()
        w.ptr(10, value, "vdd", limits=(0.8, 1.2, "V"))
        w.mpr(20, [value, 2 * value], "leak", pins=[1, 2], limits=(None, 5.0, "uA"))
        w.ftr(30, "scan", test_flg=0x80)
        w.prr(x=1, y=1, part_flg=PART_FAILED, hard_bin=3, soft_bin=31)
        w.pir()  # stopped before any parametric test
        w.prr(x=2, y=1, part_flg=PART_FAILED, hard_bin=4, soft_bin=41)
        files.append(w.write(tmp_path / name))
    state = ["--state-dir", str(tmp_path / "state")]

    def produce(*options: str) -> str:
        """One ``stream-al produce`` run of its own; the state dir is all runs share."""
        result = CliRunner().invoke(build_cli(), ["produce", "--bootstrap-servers",
                                                  kafka_bootstrap, "--mpr", "pins", *options])
        assert result.exit_code == 0, result.output
        return result.stderr

    stderr = produce("--topic", topic, *state, str(files[0]))
    assert "from JOB_NAM 'XYZ_WS_2_0_25C.tpg'" in stderr
    assert f"{files[0]}: 1 part had no parametric results" in stderr
    # A later run, after the first file was published: its parts are retests, and a dry
    # run sees it too (it reads what published runs remembered).
    dry = CliRunner().invoke(build_cli(), ["produce", "--dry-run", "--mpr", "pins", *state,
                                           str(files[1])])
    assert dry.exit_code == 0, dry.output
    assert [json.loads(line)["retest"] for line in dry.stdout.splitlines()] == [True, True]
    stderr = produce("--topic", topic, *state, str(files[1]))
    assert f"{files[1]}: 2 parts were retests" in stderr
    records = [decode_record(value) for _, value in consume(kafka_bootstrap, topic, 4)]
    assert all(isinstance(r, ParametricRecord) for r in records)
    by_id = {r.record_id: r for r in records if isinstance(r, ParametricRecord)}
    tag = hashlib.sha256(files[1].read_bytes()).hexdigest()[:8]
    assert set(by_id) == {"LOTR-W1-X1-Y1-S0-00001", "LOTR-W1-X2-Y1-S0-00002",
                          f"LOTR-W1-X1-Y1-S0-00001-R{tag}", f"LOTR-W1-X2-Y1-S0-00002-R{tag}"}
    first, again = by_id["LOTR-W1-X1-Y1-S0-00001"], by_id[f"LOTR-W1-X1-Y1-S0-00001-R{tag}"]
    assert first.product == "XYZ_WS_2_0_25C" and (first.retest, again.retest) == (False, True)
    assert first.measurements == {"vdd_t10": 1.0, "leak_t20@DQ0": 1.0, "leak_t20@2": 2.0,
                                  "scan_t30": 0.0}
    assert first.limits == {
        "vdd_t10": TestLimits(lo=0.8, hi=1.2, units="V"),
        "leak_t20@DQ0": TestLimits(lo=None, hi=5.0, units="uA"),
        "leak_t20@2": TestLimits(lo=None, hi=5.0, units="uA"),
    }
    assert (first.hard_bin, first.soft_bin, first.failed_tests) == (3, 31, ["scan_t30"])
    assert again.measurements["vdd_t10"] == 1.5 and again.limits == first.limits
    stopped = by_id["LOTR-W1-X2-Y1-S0-00002"]
    assert (stopped.no_parametric, stopped.measurements, stopped.limits) == (True, {}, None)
    assert (stopped.hard_bin, first.no_parametric) == (4, False)
