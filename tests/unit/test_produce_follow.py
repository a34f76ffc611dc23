"""``produce --follow``'s folder watcher: what it refuses to read, when a file counts as
complete, and that a renamed or copied file is recognised by its content.

The watcher is driven poll by poll with a fake clock: no sleeping, no broker.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from consumers.produce import follow as follow_module
from consumers.produce import run as produce_run
from consumers.produce.follow import FileIdentity, FolderWatcher, Ledger, Seen
from consumers.produce.items import Problem
from consumers.produce.tabular.source import ColumnMapping
from tests.stdf_writer import StdfWriter

NEVER = threading.Event()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Folder:
    """A drop folder, its watcher, and what the watcher published and said."""

    def __init__(self, tmp_path: Path, settle_s: float = 5.0) -> None:
        self.drop, self.state = tmp_path / "drop", tmp_path / "state"
        self.drop.mkdir()
        self.clock = Clock()
        self.published: list[tuple[str, bytes]] = []  # (name, content when it was read)
        self.said: list[str] = []
        self.settle_s = settle_s
        self.watcher = self.restart()

    def restart(self) -> FolderWatcher:
        self.watcher = FolderWatcher(
            self.drop,
            Ledger(self.state),
            lambda p: p.name.endswith((".stdf", ".csv")),
            self.publish,
            settle_s=self.settle_s,
            clock=self.clock,
            say=self.said.append,
        )
        return self.watcher

    def publish(self, path: Path, identity: FileIdentity) -> Mapping[str, object]:
        self.published.append((path.name, path.read_bytes()))
        return {"records": 1}

    def poll(self, at: float) -> None:
        self.clock.now = at
        self.watcher.poll(NEVER)

    def polls(self, *times: float) -> None:
        for at in times:
            self.poll(at)

    def names(self) -> list[str]:
        return [name for name, _ in self.published]


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    return Folder(tmp_path)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path the code under test passes to ``os.open``."""
    paths: list[str] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        paths.append(os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    yield paths


def stdf(path: Path, parts: int = 2, lot: str = "L1") -> Path:
    w = StdfWriter()
    w.mir(lot_id=lot)
    w.wir("W1")
    for i in range(parts):
        w.part({1: float(i)}, part_id=str(i + 1))
    w.mrr()
    return w.write(path)


def test_a_link_to_a_file_outside_is_skipped_with_one_warning_never_opened(
    folder: Folder, tmp_path: Path, opened: list[str]
) -> None:
    secret = tmp_path / "passwd.csv"
    secret.write_text("user,uid\nroot,0\n")
    (folder.drop / "lot.csv").symlink_to(secret)
    folder.polls(0, 10, 20, 30)
    assert folder.published == []
    assert folder.said == [
        f"warning: {folder.drop / 'lot.csv'}: skipped: a symbolic link (to {secret}): "
        "links are never followed"
    ]
    assert not any(p in (str(secret), str(folder.drop / "lot.csv")) for p in opened)


def test_a_link_inside_the_folder_is_refused_as_well(folder: Folder) -> None:
    real = stdf(folder.drop / "a.stdf")
    (folder.drop / "b.stdf").symlink_to(real.name)
    folder.polls(0, 10)
    assert folder.names() == ["a.stdf"]
    assert [line for line in folder.said if "b.stdf" in line] == [
        f"warning: {folder.drop / 'b.stdf'}: skipped: a symbolic link (to a.stdf): "
        "links are never followed"
    ]


def test_a_symlinked_subfolder_is_refused_and_nothing_in_it_read(
    folder: Folder, tmp_path: Path, opened: list[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    stdf(outside / "x.stdf")
    (folder.drop / "sub").symlink_to(outside, target_is_directory=True)
    (folder.drop / "plain-subfolder").mkdir()  # not watched, and not worth a warning
    folder.polls(0, 10, 20)
    assert folder.published == []
    assert folder.said == [
        f"warning: {folder.drop / 'sub'}: skipped: a symbolic link (to {outside}): "
        "links are never followed"
    ]
    assert not any(p.startswith(str(outside)) or "/sub" in p for p in opened)


def test_a_file_whose_real_location_is_outside_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = stdf(elsewhere / "a.stdf")
    os_mode = path.lstat().st_mode
    why = follow_module.refusal(path, os_mode, (tmp_path / "drop").resolve())
    assert why == "its real location is outside the folder"


@pytest.mark.timeout(30)
def test_a_fifo_is_skipped_with_one_warning_and_never_blocks(folder: Folder) -> None:
    os.mkfifo(folder.drop / "pipe.stdf")  # opening it for reading would wait for a writer
    stdf(folder.drop / "a.stdf")
    folder.polls(0, 10, 20)
    assert folder.names() == ["a.stdf"]
    assert folder.said == [
        f"warning: {folder.drop / 'pipe.stdf'}: skipped: a FIFO, not a regular file"
    ]


@pytest.mark.timeout(30)
def test_a_file_swapped_for_a_link_or_fifo_after_the_listing_is_not_opened(
    folder: Folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = stdf(tmp_path / "secret.stdf")
    (folder.drop / "a.stdf").symlink_to(secret)
    os.mkfifo(folder.drop / "b.stdf")
    listed = [Seen(folder.drop / name, 100, 1) for name in ("a.stdf", "b.stdf")]
    # The listing saw two regular files; by the time they are opened they are not.
    monkeypatch.setattr(follow_module, "scan", lambda *args: (list(listed), {}))
    folder.polls(0, 10, 20)
    assert folder.published == []
    assert [line.split(": skipped: ")[0] for line in folder.said] == [
        f"warning: {folder.drop / 'a.stdf'}",
        f"warning: {folder.drop / 'b.stdf'}",
    ]


def test_a_growing_file_is_published_once_whole_after_it_settles(folder: Folder) -> None:
    path = folder.drop / "lot.csv"
    path.write_text("id,v\n1,1.0\n")
    folder.poll(0)
    with path.open("a") as f:
        f.write("2,2.0\n")
    folder.polls(1, 2, 3, 4, 5.9)  # unchanged since t=1, but for less than 5 s
    assert folder.published == []
    folder.polls(6, 7, 60)
    assert folder.published == [("lot.csv", b"id,v\n1,1.0\n2,2.0\n")]


def test_a_tester_pausing_within_the_settle_time_does_not_get_a_part_published(
    folder: Folder,
) -> None:
    path = folder.drop / "lot.csv"
    path.write_text("id,v\n")
    for step in range(1, 6):  # a row every 4 s, each poll 2 s apart
        folder.polls(4 * step - 4, 4 * step - 2)
        with path.open("a") as f:
            f.write(f"{step},1.0\n")
    assert folder.published == []
    folder.polls(20, 22, 24, 26)
    assert folder.published == [("lot.csv", path.read_bytes())]


def test_even_without_a_settle_time_one_look_is_not_enough(tmp_path: Path) -> None:
    folder = Folder(tmp_path, settle_s=0)
    stdf(folder.drop / "a.stdf")
    folder.poll(0)
    assert folder.published == []
    folder.poll(0.01)
    assert folder.names() == ["a.stdf"]


def test_partial_and_hidden_names_stay_ignored(folder: Folder) -> None:
    for name in ("a.stdf.part", "b.stdf.tmp", "c.csv.partial", ".d.stdf"):
        (folder.drop / name).write_bytes(b"x")
    folder.polls(0, 10, 20)
    assert folder.published == [] and folder.said == []


def test_a_renamed_and_a_copied_published_file_are_not_published_again(
    folder: Folder,
) -> None:
    original = stdf(folder.drop / "a.stdf")
    folder.polls(0, 10)
    assert folder.names() == ["a.stdf"]
    shutil.copy(original, folder.drop / "copy.stdf")  # a new mtime, the same content
    original.rename(folder.drop / "renamed.stdf")
    folder.polls(20, 30, 40)
    folder.restart()
    folder.polls(50, 60, 70)
    assert folder.names() == ["a.stdf"]
    notes = [line for line in folder.said if line.startswith("note:")]
    assert len(notes) == 4  # each name once per run
    assert all(f"same content as {(folder.drop / 'a.stdf').resolve()}" in n for n in notes)


def test_a_file_with_new_content_under_an_old_name_is_published(folder: Folder) -> None:
    stdf(folder.drop / "a.stdf", parts=2)
    folder.polls(0, 10)
    stdf(folder.drop / "a.stdf", parts=3)  # rewritten: other content
    os.utime(folder.drop / "a.stdf", ns=(1, 1))
    folder.polls(20, 30)
    assert folder.names() == ["a.stdf", "a.stdf"]
    assert len(Ledger(folder.state).path.read_text().splitlines()) == 2


def legacy_line(path: Path) -> dict[str, object]:
    """A ledger line as the watcher wrote them before the content hash."""
    import hashlib

    info = path.stat()
    head = hashlib.sha256(path.read_bytes()[: 1 << 20]).hexdigest()
    return {
        "path": str(path.resolve()),
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "head_sha256": head,
        "published_at": "2026-11-01T08:00:00+00:00",
        "records": 2,
        "problems": 0,
    }


def test_old_ledger_lines_are_understood_and_migrated(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    old = stdf(folder.drop / "old.stdf")
    changed = stdf(folder.drop / "changed.stdf", parts=1)
    lines = [legacy_line(old), legacy_line(changed)]
    os.utime(changed, ns=(5, 5))  # touched since: the old line no longer vouches for it
    ledger_path = folder.state / "produce-ledger.jsonl"
    ledger_path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    folder.restart()
    folder.polls(0, 10)
    assert folder.names() == ["changed.stdf"]
    entries = [json.loads(line) for line in ledger_path.read_text().splitlines()]
    [migrated] = [e for e in entries if "migrated_from" in e]
    assert migrated["sha256"] == FileIdentity.of(old).sha256
    assert len(entries) == 4  # two old lines kept as they were, two appended
    assert migrated["published_at"] == "2026-11-01T08:00:00+00:00"
    assert migrated["records"] == 2
    old.rename(folder.drop / "old-renamed.stdf")  # now known by content: still not sent
    folder.restart()
    folder.polls(20, 30)
    assert folder.names() == ["changed.stdf"]


class ListSink:
    """Accepts every record; can rename the file being read after its first record."""

    def __init__(self, rename: tuple[Path, Path] | None = None) -> None:
        self.values: list[bytes] = []
        self.delivered, self.failures = 0, list[Problem]()
        self._rename = rename

    def send(self, key: bytes | None, value: bytes, file: str, position: str) -> None:
        self.values.append(value)
        self.delivered += 1
        if self._rename is not None:
            source, target = self._rename
            source.rename(target)
            self._rename = None

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def ids(self) -> list[str]:
        return [json.loads(v)["record_id"] for v in self.values]


def producer_watcher(
    drop: Path, state: Path, sink: ListSink
) -> tuple[produce_run.Producer, FolderWatcher]:
    options = produce_run.ProduceOptions(mapping=ColumnMapping(product="P"))
    producer = produce_run.Producer(sink, options, Console(stderr=True))
    progress = produce_run.progress_bar(producer.console)
    watcher = FolderWatcher(
        drop,
        Ledger(state),
        lambda p: produce_run.detect_format(p, "auto") is not None,
        lambda p, identity: producer.publish_for_ledger(p, identity, progress),
        settle_s=0,
    )
    return producer, watcher


def test_a_file_renamed_while_it_is_published_gives_one_set_of_ids_once(
    tmp_path: Path,
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "lot.csv"
    path.write_text("v\n" + "".join(f"{i}.0\n" for i in range(50)))
    sink = ListSink(rename=(path, drop / "lot-final.csv"))
    producer, watcher = producer_watcher(drop, tmp_path / "state", sink)
    watcher.run(NEVER, 0.0, polls=6)
    assert len(sink.ids()) == 50 and len(set(sink.ids())) == 50
    assert [r.sent for r in producer.totals.files] == [50]
    again = ListSink()
    producer_watcher(drop, tmp_path / "state", again)[1].run(NEVER, 0.0, polls=3)
    assert again.values == []  # after a restart too


def test_record_ids_of_a_published_file_and_its_renamed_copy_are_identical(
    tmp_path: Path,
) -> None:
    drop, other = tmp_path / "drop", tmp_path / "other"
    drop.mkdir()
    other.mkdir()
    path = drop / "lot.csv"
    path.write_text("v\n1.0\n2.0\n")
    first, second = ListSink(), ListSink()
    producer_watcher(drop, tmp_path / "state", first)[1].run(NEVER, 0.0, polls=2)
    shutil.copy(path, other / "renamed-copy.csv")
    producer_watcher(other, tmp_path / "state2", second)[1].run(NEVER, 0.0, polls=2)
    assert first.ids() == second.ids() and len(first.ids()) == 2
