"""``stream-al produce`` into a real Apache Kafka: exactly the parts of the file come back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from typer.testing import CliRunner

from consumers.cli import build_cli
from stream_al.codec import decode_record
from stream_al.records import ParametricRecord
from tests.stdf_writer import PART_FAILED, StdfWriter

pytestmark = pytest.mark.integration

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


def test_produce_sends_exactly_the_parts_of_an_stdf_file(
    tmp_path: Path,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    create_topic: Callable[[str, int], str],
) -> None:
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
