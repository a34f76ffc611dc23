"""``stream-al produce`` end to end without a broker: --dry-run, fakes, and the follow ledger."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from consumers.cli import build_cli
from consumers.kafka.gateway import ClientError
from consumers.produce import run as produce_run
from consumers.produce.follow import FileIdentity, FolderWatcher, Ledger
from consumers.produce.items import Parsed, Problem
from consumers.produce.publish import KafkaRecordSink, Pacer, publish_items
from stream_al.codec import decode_record
from stream_al.errors import BrokerUnavailable
from tests.stdf_writer import StdfWriter

runner = CliRunner()


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """produce keeps the parts it has seen in the state dir: each test its own."""
    monkeypatch.setenv("STREAM_AL_STATE_DIR", str(tmp_path / "state"))


def produce(*args: str | Path) -> Result:
    return runner.invoke(build_cli(), ["produce", *map(str, args)])


def stdf(path: Path, parts: int = 3, product: str = "PMIC-A7", lot: str = "L1") -> Path:
    w = StdfWriter()
    w.mir(lot_id=lot, part_typ=product)
    w.wir("W1")
    for i in range(parts):
        w.part({1: float(i), 2: 2.0}, {1: "vdd", 2: "idd"}, x=i, y=0, part_id=str(i + 1))
    w.mrr()
    return w.write(path)


def records(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class FakeSink:
    """Accepts everything; ``fail_every`` makes every n-th record fail on flush."""

    def __init__(self, fail_every: int = 0) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []
        self.delivered, self.failures = 0, list[Problem]()
        self._fail_every, self._pending = fail_every, list[tuple[str, str]]()

    def send(self, key: bytes | None, value: bytes, file: str, position: str) -> None:
        self.sent.append((key, value))
        self._pending.append((file, position))

    def flush(self) -> None:
        for n, (file, position) in enumerate(self._pending, start=1):
            if self._fail_every and n % self._fail_every == 0:
                self.failures.append(Problem(file, position, "delivery failed", "broker said no"))
            else:
                self.delivered += 1
        self._pending.clear()

    def close(self) -> None:
        self.flush()


def test_dry_run_prints_one_valid_record_per_part(tmp_path: Path) -> None:
    result = produce("--dry-run", "--label-from", "pass_fail", stdf(tmp_path / "a.stdf"))
    assert result.exit_code == 0, result.output
    decoded = [decode_record(line.encode()) for line in result.stdout.splitlines()]
    assert [r.record_id for r in decoded] == ["L1-W1-P1-00001", "L1-W1-P2-00002", "L1-W1-P3-00003"]
    assert {r.label for r in decoded} == {"pass"}


def test_a_truncated_file_sends_its_complete_parts_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "cut.stdf"
    path.write_bytes(stdf(tmp_path / "whole.stdf").read_bytes()[:-30])
    result = produce("--dry-run", path)
    assert result.exit_code == 1
    assert len(records(result)) == 2
    assert f"{path}: part 3 at byte" in result.stderr and "truncated" in result.stderr


def test_a_record_the_codec_rejects_is_reported_not_sent(tmp_path: Path) -> None:
    w = StdfWriter()
    w.mir(job_nam="J" * 200, job_rev="9" * 100)  # test_program: 302 characters, > 256
    w.part({1: 1.0}, part_id="1")
    w.part({1: 2.0}, part_id="2")
    rejected = produce("--dry-run", w.write(tmp_path / "long.stdf"))
    assert rejected.exit_code == 1 and records(rejected) == []
    assert rejected.stderr.count("problem (invalid record)") == 2
    assert "test_program" in rejected.stderr


def test_an_empty_part_typ_falls_back_with_one_warning_per_file(tmp_path: Path) -> None:
    a = stdf(tmp_path / "a.stdf", parts=2, product="")
    b = stdf(tmp_path / "b.stdf", parts=2, product="", lot="L2")
    from_job = produce("--dry-run", a, b)
    assert from_job.exit_code == 0
    assert [r["product"] for r in records(from_job)] == ["FT"] * 4  # the writer's JOB_NAM
    assert from_job.stderr.count("warning: ") == 2
    assert f"warning: {a}: the MIR has no PART_TYP: product 'FT' from JOB_NAM 'FT'" \
        in from_job.stderr
    given = produce("--dry-run", "--product", "PMIC-B1", a)
    assert [r["product"] for r in records(given)] == ["PMIC-B1", "PMIC-B1"]
    assert given.stderr.count("warning: ") == 1 and "from --product" in given.stderr


def test_parts_without_parametric_results_are_sent_and_counted_in_the_summary(
    tmp_path: Path,
) -> None:
    w = StdfWriter()
    w.mir(lot_id="L3")
    w.wir("W1")
    w.part({1: 1.0}, {1: "vdd"}, x=0, y=0)
    for x in (1, 2, 3):
        w.pir()  # the flow stopped before any PTR
        w.prr(x=x, y=0, part_flg=0x08, hard_bin=5)
    path = w.write(tmp_path / "stops.stdf")
    result = produce("--dry-run", path)
    assert result.exit_code == 0
    assert [r.get("no_parametric", False) for r in records(result)] == [False, True, True, True]
    assert f"{path}: 3 parts had no parametric results (sent, flagged no_parametric)" \
        in result.stderr.splitlines()


def test_a_retest_file_after_the_first_gets_distinct_ids_and_is_counted(
    tmp_path: Path,
) -> None:
    first = stdf(tmp_path / "first.stdf", lot="L4")
    retest = stdf(tmp_path / "retest.stdf", parts=2, lot="L4")  # the same lot, wafer, dies
    result = produce("--dry-run", first, retest)
    assert result.exit_code == 0
    sent = records(result)
    ids = [r["record_id"] for r in sent]
    assert len(set(ids)) == 5 and ids[:3] == ["L4-W1-P1-00001", "L4-W1-P2-00002", "L4-W1-P3-00003"]
    tag = hashlib.sha256(retest.read_bytes()).hexdigest()[:8]
    assert ids[3:] == [f"L4-W1-P1-00001-R{tag}", f"L4-W1-P2-00002-R{tag}"]
    assert [r.get("retest", False) for r in sent] == [False] * 3 + [True] * 2
    assert f"{retest}: 2 parts were retests" in result.stderr


@pytest.mark.parametrize(
    ("mode", "names"),
    [
        ("summary", ["t5@min", "t5@max", "t5@mean"]),
        ("pins", ["t5@DQ0", "t5@DQ1"]),
        ("none", []),
    ],
)
def test_the_mpr_option_chooses_what_pin_results_become(
    tmp_path: Path, mode: str, names: list[str]
) -> None:
    w = StdfWriter()
    w.mir()
    w.pmr(1, "DQ0")
    w.pmr(2, "DQ1")
    w.pir()
    w.mpr(5, [1.0, 3.0], pins=[1, 2])
    w.prr(part_id="1")
    result = produce("--dry-run", "--mpr", mode, w.write(tmp_path / "m.stdf"))
    assert result.exit_code == 0, result.output
    assert list(records(result)[0]["measurements"]) == names


def test_a_csv_mapping_with_no_product_fails_up_front_with_one_message(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for path in (a, b):
        path.write_text("id,v\n1,1.0\n2,2.0\n3,3.0\n")
    result = produce("--dry-run", "--id-column", "id", a, b)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: parametric records need a product: pass --product-column COLUMN (the column "
        "naming each row's product) or --product NAME (one product for every row)"
    ]
    assert produce("--dry-run", "--id-column", "id", "--product", "P", a).exit_code == 0
    transactions = produce("--dry-run", "--kind", "transaction", "--id-column", "id", a)
    assert transactions.exit_code == 0 and len(records(transactions)) == 3


def test_an_unknown_column_stops_everything_before_anything_is_sent(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("serial,v\ns1,1.0\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("sn,v\ns1,1.0\n")
    result = produce("--dry-run", "--product", "P", "--id-column", "serial", good, bad)
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{bad}: column 'serial' (--id-column) is not in the file" in result.stderr
    assert "its columns are: 'sn', 'v'" in result.stderr


def test_csv_wrong_types_are_reported_and_the_rest_sent(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,amount,channel\n1,12.5,web\n2,lots,shop\n3,7,web\n")
    result = produce("--dry-run", "--kind", "transaction", "--id-column", "id", path)
    assert result.exit_code == 1
    assert [r["record_id"] for r in records(result)] == ["1", "3"]
    assert f"{path}: line 3, column 'amount'" in result.stderr


def test_unknown_file_format_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00")
    result = produce("--dry-run", path)
    assert result.exit_code == 2 and "unknown format" in result.stderr


def test_message_keys_follow_the_key_option(tmp_path: Path) -> None:
    sink = FakeSink()
    producer = produce_run.Producer(
        sink, produce_run.ProduceOptions(key_field="lot_id"), Console(stderr=True)
    )
    with produce_run.progress_bar(producer.console) as progress:
        report = producer.publish(stdf(tmp_path / "k.stdf", lot="LOT-9"), progress)
    assert [key for key, _ in sink.sent] == [b"LOT-9"] * 3
    assert (report.read, report.sent, report.problems) == (3, 3, 0)


def test_delivery_failures_are_counted_reported_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(KafkaRecordSink, "connect", lambda *a: FakeSink(fail_every=2))
    result = produce(stdf(tmp_path / "d.stdf", parts=4))
    assert result.exit_code == 1
    assert result.stderr.count("delivery failed") >= 2
    assert f"{tmp_path / 'd.stdf'}: part 2 at byte" in result.stderr


def test_no_broker_exits_3_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise BrokerUnavailable("no Kafka broker answers at localhost:1")

    monkeypatch.setattr(KafkaRecordSink, "connect", refuse)
    result = produce("--bootstrap-servers", "localhost:1", stdf(tmp_path / "n.stdf"))
    assert result.exit_code == 3 and "nothing was sent" in result.stderr


def test_a_stop_request_ends_the_file_after_the_record_in_hand() -> None:
    items = [Parsed({"record_id": str(i)}, "f", f"line {i}") for i in range(5)]
    seen: list[object] = []
    outcome = publish_items(
        items, FakeSink(), "record_id", Pacer(0), seen.append, should_stop=lambda: len(seen) >= 2
    )
    assert outcome.stopped and len(seen) == 2


def test_the_pacer_spaces_records_at_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("consumers.produce.publish.time.sleep", sleeps.append)
    pacer = Pacer(4.0, clock=lambda: 10.0)  # the clock stands still: every wait is owed
    for _ in range(3):
        pacer.wait()
    assert sleeps == [0.0, 0.25, 0.5]


def follow(drop: Path, state: Path, polls: int = 2, settle: str = "0") -> Result:
    """--settle 0 by default: two polls in a row must still agree."""
    return produce(
        "--dry-run",
        "--follow",
        drop,
        "--state-dir",
        state,
        "--polls",
        str(polls),
        "--poll-interval",
        "0.01",
        "--settle",
        settle,
    )


def test_follow_publishes_each_settled_file_once_even_across_restarts(tmp_path: Path) -> None:
    drop, state = tmp_path / "drop", tmp_path / "state"
    drop.mkdir()
    stdf(drop / "a.stdf", parts=2, lot="A")
    (drop / ".hidden.stdf").write_bytes(b"x")
    (drop / "b.stdf.part").write_bytes(b"x")
    first = follow(drop, state)
    assert first.exit_code == 0, first.output
    assert [r["lot_id"] for r in records(first)] == ["A", "A"]
    assert records(follow(drop, state)) == []  # a restart: already in the ledger
    stdf(drop / "c.stdf", parts=1, lot="C")
    assert [r["lot_id"] for r in records(follow(drop, state))] == ["C"]
    stdf(drop / "a.stdf", parts=3, lot="A")  # rewritten with more parts: new content
    assert [r["lot_id"] for r in records(follow(drop, state))] == ["A"] * 3
    ledger = state / "produce-ledger.jsonl"
    assert len(ledger.read_text().splitlines()) == 3
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600


def test_follow_waits_until_a_file_has_settled(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    stdf(drop / "a.stdf")
    assert records(follow(drop, tmp_path / "state", polls=1)) == []
    assert records(follow(drop, tmp_path / "state", polls=3, settle="60")) == []


def test_follow_warns_about_a_link_and_publishes_the_rest(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    stdf(drop / "a.stdf", lot="A")
    (drop / "b.stdf").symlink_to(stdf(tmp_path / "outside.stdf", lot="OUT"))
    result = follow(drop, tmp_path / "state", polls=3)
    assert result.exit_code == 0, result.output
    assert {r["lot_id"] for r in records(result)} == {"A"}
    assert result.stderr.count("skipped: a symbolic link") == 1
    assert f"{drop / 'b.stdf'}: skipped" in result.stderr


@pytest.mark.timeout(30)
def test_a_fifo_named_on_the_command_line_is_a_usage_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    result = produce("--dry-run", "--product", "P", tmp_path / "pipe.csv")
    assert result.exit_code == 2 and "not a regular file" in result.stderr


def test_follow_keeps_its_ledger_in_the_configured_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_AL_STATE_DIR", str(tmp_path / "from-env"))
    drop = tmp_path / "drop"
    drop.mkdir()
    stdf(drop / "a.stdf")
    result = produce(
        "--dry-run", "--follow", drop, "--polls", "2", "--poll-interval", "0.01", "--settle", "0"
    )
    assert result.exit_code == 0 and len(records(result)) == 3
    assert (tmp_path / "from-env" / "produce-ledger.jsonl").is_file()


def test_a_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    result = produce("--dry-run", "--config", tmp_path / "missing.yaml", stdf(tmp_path / "a.stdf"))
    assert result.exit_code == 2 and "missing.yaml" in result.stderr


def test_a_file_not_fully_delivered_stays_out_of_the_ledger(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = stdf(drop / "a.stdf")
    outcomes: list[dict[str, object] | None] = [None, {"records": 3}]
    calls: list[Path] = []

    def publish(p: Path, identity: FileIdentity) -> dict[str, object] | None:
        calls.append(p)
        return outcomes[len(calls) - 1]

    ledger = Ledger(tmp_path / "state")
    watcher = FolderWatcher(drop, ledger, lambda p: True, publish, settle_s=0)
    import threading

    watcher.run(threading.Event(), 0.0, polls=4)
    assert calls == [path, path]  # the failed attempt is retried, the success is final
    assert FileIdentity.of(path) in Ledger(tmp_path / "state")


def test_a_ledger_line_cut_by_a_crash_is_ignored_and_the_next_line_kept(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    first, second = tmp_path / "f.stdf", tmp_path / "g.stdf"
    first.write_bytes(b"data")
    second.write_bytes(b"other data")
    ledger.add(FileIdentity.of(first), first, records=1)
    with ledger.path.open("ab") as f:
        f.write('{"sha256": "ab", "path": "/x/caf\u00e9'.encode()[:-1])  # cut mid-character
    reopened = Ledger(tmp_path)
    assert FileIdentity.of(first) in reopened
    reopened.add(FileIdentity.of(second), second, records=2)  # must not be glued to the cut
    again = Ledger(tmp_path)
    assert FileIdentity.of(first) in again and FileIdentity.of(second) in again


class FutureProducer:
    """The gateway's producer surface, with deliveries the test settles by hand."""

    def __init__(self) -> None:
        self.reports: list[Callable[[ClientError | None], None]] = []
        self.settled = 0

    def send(self, topic: str, key: bytes | None, value: bytes,
             headers: Sequence[tuple[str, bytes]],
             on_delivery: Callable[[ClientError | None], None]) -> None:
        self.reports.append(on_delivery)

    def send_and_wait(self, topic: str, key: bytes | None, value: bytes,
                      timeout_s: float) -> None:
        raise NotImplementedError

    def settle(self, n: int, error: ClientError | None = None) -> None:
        self.reports[n](error)
        self.settled += 1

    def flush(self, timeout_s: float) -> bool:
        return self.settled == len(self.reports)

    def close(self, timeout_s: float) -> None:
        pass


def test_kafka_sink_accounts_for_every_record_exactly_once() -> None:
    from consumers.kafka.sink import KafkaSink
    from consumers.produce.publish import KafkaRecordSink

    producer = FutureProducer()
    sink = KafkaRecordSink("ate.parametric", KafkaSink(producer, flush_timeout_s=1))
    for n in range(1, 5):
        sink.send(b"k", b"{}", "f.stdf", f"part {n}")
    producer.settle(0)
    producer.settle(1, ClientError("not the leader", retriable=True))
    sink.flush()  # parts 3 and 4 never answered
    producer.settle(2)  # too late: already reported
    producer.settle(3, ClientError("timed out", retriable=True))
    sink.close()
    assert sink.delivered == 1
    assert [(p.position, p.kind) for p in sink.failures] == [
        ("part 2", "delivery failed"),
        ("part 3 … part 4", "delivery failed"),
    ]
    assert sink.failures[1].reason.startswith("2 record(s) not acknowledged")
    assert sink.failures[1].records == 2


def test_the_command_refuses_a_productless_csv_before_it_reaches_for_a_broker(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id,v\n1,1.0\n2,2.0\n")
    env = {"PATH": "/usr/bin:/bin", "STREAM_AL_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "consumers", "produce", "--id-column", "id", str(path),
         "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
        check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: parametric records need a product: pass --product-column COLUMN (the column "
        "naming each row's product) or --product NAME (one product for every row)"
    ]
    assert result.stdout == ""
