"""The checkpoint store: what it trusts (owner, mode, key), how it writes (fresh temp
file, never through a link, two generations), and how it fails (a clear, retriable
StateDirError; the old checkpoint intact). Files in tmp_path, no broker."""

from __future__ import annotations

import errno
import logging
import os
import pickle
import stat
import struct
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from consumers.daemon.checkpoints import CheckpointStore
from stream_al.errors import ConfigError, StateDirError, StateError
from stream_al.learner import Learner, LearnerConfig
from stream_al.records import OracleLabel, ParametricRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.state import Checkpoint, key_id
from tests.unit.test_state import PlantsMarker, format1

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
OTHER_UID = 12345


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state: Path) -> CheckpointStore:
    made = CheckpointStore(state)
    made.prepare()
    return made


def checkpoint(offset: int = 41) -> Checkpoint:
    return Checkpoint(Learner(LearnerConfig()), {("ate.parametric", 0): offset})


def offsets_of(loaded: Checkpoint | None) -> int:
    assert loaded is not None
    return loaded.offsets[("ate.parametric", 0)]


def rows(n: int, start: int = 0) -> Iterator[tuple[ParametricRecord, str]]:
    simulator = FloorSimulator(FloorConfig(run_length=n + start), seed=3)
    for index, simulated in enumerate(simulator.stream(start + n)):
        if index >= start:
            yield ParametricRecord.model_validate(simulated.record), simulated.truth


def drive(learner: Learner, data: Iterator[tuple[ParametricRecord, str]]) -> list[object]:
    """Decide every record and answer its query at once; the decisions, to compare."""
    decisions: list[object] = []
    for record, truth in data:
        decision = learner.decide(record, record.ts)
        if decision.request is not None:
            learner.apply(OracleLabel(query_id=decision.request.query_id, label=truth,
                                      labeled_at=record.ts + timedelta(seconds=1)))
        decisions.append((decision.prediction, decision.request))
    return decisions


# -- round trip and the key ----------------------------------------------------------


def test_a_restored_learner_decides_exactly_as_the_original(store: CheckpointStore) -> None:
    original = Learner(LearnerConfig(budget={"fraction": 0.2}))
    drive(original, rows(800))
    assert sum(original.registry.get(k).version for k in original.registry.keys()) > 50
    store.save(Checkpoint(original, {("ate.parametric", 0): 800}))
    loaded = CheckpointStore(store.state_dir).load()  # a new process: key from its file
    assert loaded is not None and offsets_of(loaded) == 800
    more = list(rows(1500, start=800))
    assert drive(loaded.learner, iter(more)) == drive(original, iter(more))


def test_the_generated_key_is_a_private_file_and_is_never_replaced(
        store: CheckpointStore) -> None:
    store.save(checkpoint(1))
    key = store.key_path.read_bytes()
    info = os.stat(store.key_path)
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    again = CheckpointStore(store.state_dir)
    again.save(checkpoint(2))
    assert store.key_path.read_bytes() == key and offsets_of(again.load()) == 2


def test_a_configured_key_signs_and_no_key_file_is_written(state: Path) -> None:
    secret = SecretStr("s" * 40)
    keyed = CheckpointStore(state, secret)
    keyed.prepare()
    keyed.save(checkpoint(7))
    assert not keyed.key_path.exists()
    assert offsets_of(CheckpointStore(state, secret).load()) == 7
    with pytest.raises(StateError, match=r"no key to authenticate it: .*checkpoint.key is "
                                         "missing"):
        CheckpointStore(state).load()
    with pytest.raises(StateError, match=f"another key .*{key_id(b'o' * 40)}"):
        CheckpointStore(state, SecretStr("o" * 40)).load()


def test_a_short_configured_key_is_refused_without_echoing_it(state: Path) -> None:
    with pytest.raises(ConfigError, match="has 12 characters; use at least 32") as refused:
        CheckpointStore(state, SecretStr("hunter2-abcd"))
    assert "hunter2" not in str(refused.value)


# -- what is trusted -------------------------------------------------------------------


def test_a_forged_checkpoint_file_is_refused_before_it_is_unpickled(
        store: CheckpointStore, tmp_path: Path) -> None:
    store.save(checkpoint())
    marker = tmp_path / "ran"
    ours = bytes.fromhex(key_id(store.key_path.read_bytes().strip()))
    header = b"STREAMAL" + struct.pack(">H", 2) + ours
    store.path.write_bytes(header + bytes(32) + pickle.dumps(PlantsMarker(marker)))
    store.previous_path.unlink(missing_ok=True)
    with pytest.raises(StateError, match=f"^{store.path}: checkpoint fails authentication"
                                         f".*To start fresh, move it away \\(mv {store.path} "
                                         f"{store.path}.old\\)"):
        store.load()
    assert not marker.exists()


def test_a_format1_checkpoint_is_refused_saying_how_to_start_fresh(
        store: CheckpointStore, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    fd = os.open(store.path, os.O_WRONLY | os.O_CREAT, 0o600)
    with open(fd, "wb") as file:
        file.write(format1(pickle.dumps(PlantsMarker(marker))))
    with pytest.raises(StateError) as refused:
        store.load()  # no key file yet: the format is still named first
    message = str(refused.value)
    assert "format 1 is refused: it is not authenticated" in message
    assert f"mv {store.path} {store.path}.old" in message and "label log" in message
    assert not marker.exists()


@needs_root
def test_a_checkpoint_owned_by_another_user_is_refused(store: CheckpointStore) -> None:
    store.save(checkpoint())
    os.chown(store.path, OTHER_UID, -1)
    with pytest.raises(StateError, match=f"refusing checkpoint {store.path}: owned by uid "
                                         f"{OTHER_UID} with mode 0600.*chown {os.geteuid()} "
                                         f"{store.path} && chmod 600"):
        store.load()


def test_a_0644_checkpoint_is_refused(store: CheckpointStore) -> None:
    store.save(checkpoint())
    store.path.chmod(0o644)
    with pytest.raises(StateError, match=r"mode 0644, but only a file of the daemon's user "
                                         r"\(uid \d+\) with mode 0600 is trusted"):
        store.load()


def test_a_key_file_others_can_read_is_refused(store: CheckpointStore) -> None:
    store.save(checkpoint())
    store.key_path.chmod(0o640)
    with pytest.raises(StateError, match=f"refusing checkpoint key {store.key_path}: .*0640"):
        CheckpointStore(store.state_dir).load()


def test_a_group_writable_state_dir_is_refused(store: CheckpointStore) -> None:
    store.save(checkpoint())
    store.state_dir.chmod(0o770)
    fix = f"chmod 700 {store.state_dir}"
    with pytest.raises(StateError, match=f"refusing state dir {store.state_dir}: .*mode 0770"
                                         f".*{fix}"):
        store.load()
    with pytest.raises(StateError, match=fix):
        store.prepare()


@needs_root
def test_a_state_dir_owned_by_another_user_is_refused(store: CheckpointStore) -> None:
    store.save(checkpoint())
    os.chown(store.state_dir, OTHER_UID, -1)
    with pytest.raises(StateError, match=f"owned by uid {OTHER_UID} with mode 0700.*chown "
                                         f"{os.geteuid()} {store.state_dir}"):
        store.load()


def test_a_missing_state_dir_is_created_0700(tmp_path: Path) -> None:
    made = CheckpointStore(tmp_path / "a" / "state")
    assert made.load() is None  # nothing to check yet, nothing created by a load
    made.prepare()
    assert stat.S_IMODE(os.stat(made.state_dir).st_mode) == 0o700


def test_a_symlinked_checkpoint_is_refused(store: CheckpointStore, tmp_path: Path) -> None:
    store.save(checkpoint())
    elsewhere = tmp_path / "elsewhere.bin"
    os.replace(store.path, elsewhere)
    store.path.symlink_to(elsewhere)
    with pytest.raises(StateError, match="it is a symbolic link"):
        store.load()


# -- how it writes ---------------------------------------------------------------------


def test_a_link_planted_at_the_temporary_name_is_never_followed(
        store: CheckpointStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save(checkpoint(1))
    victim = tmp_path / "victim"
    victim.write_text("precious")
    planted = store.state_dir / ".checkpoint-planted.tmp"
    planted.symlink_to(victim)
    monkeypatch.setattr(store, "_temporary_path", lambda: planted)
    with pytest.raises(StateDirError, match="File exists"):
        store.save(checkpoint(2))
    assert victim.read_text() == "precious" and planted.is_symlink()
    assert offsets_of(store.load()) == 1


def test_stale_temporaries_go_only_if_they_are_regular_files_of_ours(
        store: CheckpointStore, tmp_path: Path) -> None:
    ours = store.state_dir / ".checkpoint-0123abcd.tmp"
    ours.write_bytes(b"torn")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    legacy_link = store.state_dir / "checkpoint.tmp"  # the old fixed temporary name
    legacy_link.symlink_to(victim)
    unrelated = store.state_dir / "notes.txt"
    unrelated.write_text("kept")
    store.prepare()
    assert not ours.exists()
    assert legacy_link.is_symlink() and victim.read_text() == "precious"
    assert unrelated.exists()


@needs_root
def test_a_stale_temporary_of_another_user_is_left_alone(store: CheckpointStore) -> None:
    theirs = store.state_dir / ".checkpoint-4567cdef.tmp"
    theirs.write_bytes(b"?")
    os.chown(theirs, OTHER_UID, -1)
    store.prepare()
    assert theirs.exists()


def test_the_previous_generation_is_used_when_the_newest_is_corrupt(
        store: CheckpointStore, caplog: pytest.LogCaptureFixture) -> None:
    store.save(checkpoint(1))
    store.save(checkpoint(2))
    blob = bytearray(store.path.read_bytes())
    blob[-1] ^= 0xFF
    store.path.write_bytes(bytes(blob))
    with caplog.at_level(logging.WARNING):
        assert offsets_of(store.load()) == 1
    assert store.loaded_from == store.previous_path
    assert f"restored the previous checkpoint {store.previous_path}" in caplog.text
    assert "authentication" in caplog.text
    # The next save keeps the good generation and sets the refused file aside.
    store.save(checkpoint(3))
    assert store.refused_path.read_bytes() == bytes(blob)
    assert offsets_of(store.load()) == 3
    store.path.unlink()
    assert offsets_of(store.load()) == 1


def test_the_previous_generation_is_used_after_a_crash_between_the_renames(
        store: CheckpointStore) -> None:
    store.save(checkpoint(1))
    store.save(checkpoint(2))
    os.replace(store.path, store.previous_path)  # the first rename of a third save
    assert offsets_of(store.load()) == 2
    store.save(checkpoint(3))
    assert offsets_of(store.load()) == 3


def test_when_both_generations_are_refused_both_are_named(store: CheckpointStore) -> None:
    store.save(checkpoint(1))
    store.save(checkpoint(2))
    for path in (store.path, store.previous_path):
        path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(StateError, match=f"no checkpoint can be restored: {store.path}: "
                                         f".*; {store.previous_path}: .*mv {store.path} "
                                         f"{store.path}.old && mv {store.previous_path}"):
        store.load()


# -- how it fails ----------------------------------------------------------------------


def failing(call: Callable[..., Any], code: int, when: Callable[..., bool]) -> Callable[..., Any]:
    def fake(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            raise OSError(code, os.strerror(code))
        return call(*args, **kwargs)
    return fake


def creates(path: Any, flags: int, *rest: Any, **kwargs: Any) -> bool:
    return bool(flags & os.O_CREAT)


@pytest.mark.parametrize(("code", "reason"), [
    (errno.ENOSPC, "No space left on device (ENOSPC)"),
    (errno.EROFS, "Read-only file system (EROFS)"),  # root ignores chmod 0500: simulated
    (errno.EACCES, "Permission denied (EACCES)"),
])
def test_a_state_dir_that_cannot_be_written_raises_a_retriable_state_dir_error(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch, code: int, reason: str) -> None:
    store.save(checkpoint(1))
    monkeypatch.setattr(os, "open", failing(os.open, code, creates))
    with pytest.raises(StateDirError) as failed:
        store.save(checkpoint(2))
    assert str(failed.value) == f"state dir {store.state_dir} not writable: {reason}"
    assert failed.value.retriable and store.write_error == str(failed.value)
    monkeypatch.undo()
    assert offsets_of(store.load()) == 1
    store.save(checkpoint(3))
    assert store.write_error is None and offsets_of(store.load()) == 3


def test_a_write_that_fails_halfway_leaves_no_temporary_file(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save(checkpoint(1))
    monkeypatch.setattr(os, "fsync", failing(os.fsync, errno.ENOSPC, lambda fd: True))
    with pytest.raises(StateDirError, match="No space left on device"):
        store.save(checkpoint(2))
    monkeypatch.undo()
    assert sorted(p.name for p in store.state_dir.iterdir()) == ["checkpoint.bin",
                                                                 "checkpoint.key"]
    assert offsets_of(store.load()) == 1


def test_a_first_save_that_cannot_create_the_key_is_a_state_dir_error(
        store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "link", failing(os.link, errno.EROFS, lambda *a, **k: True))
    with pytest.raises(StateDirError, match="Read-only file system"):
        store.save(checkpoint())
    monkeypatch.undo()
    assert list(store.state_dir.iterdir()) == []
