"""The daemon and a state dir it cannot write: it says so on /readyz, keeps serving,
retries at the next checkpoint, never exits, never blames Kafka, and never stalls a
rebalance. Fake Kafka clients, real files in tmp_path."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from consumers.daemon.connection import Connection
from consumers.daemon.loop import Daemon
from consumers.kafka.gateway import TopicPartition
from consumers.settings import Settings
from stream_al.errors import StateDirError, StateError

TOPIC = "ate.parametric"


class FakeSink:
    def flush(self, timeout_s: float) -> None:
        pass

    def take_failures(self) -> list[Any]:
        return []


class FakeConnection:
    """What ``_save`` and ``checkpoint`` touch: a sink that delivers, a group commit."""

    def __init__(self) -> None:
        self.sink = FakeSink()
        self.committed: list[Mapping[TopicPartition, int]] = []

    def commit_async(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.committed.append(offsets)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, 0)]


def daemon_in(state_dir: Path, **settings: Any) -> Daemon:
    daemon = Daemon(Settings(state_dir=state_dir, http={"host": "127.0.0.1", "port": 0},
                             **settings))
    daemon.store.prepare()
    daemon._restore()
    return daemon


def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def fake(path: Any, flags: int, *rest: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, flags, *rest, **kwargs)

    monkeypatch.setattr(os, "open", fake)


def test_a_failed_save_shows_on_readyz_is_retried_later_and_clears(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = daemon_in(tmp_path / "state")
    connection = cast(Connection, FakeConnection())
    daemon._save(connection)  # a first checkpoint (and the key) while the disk is fine
    assert daemon.pipeline is not None
    daemon.pipeline.offsets[(TOPIC, 0)] = 99  # work done since that checkpoint
    full_disk(monkeypatch)
    with caplog.at_level(logging.ERROR):
        daemon._save(connection)  # not raised: the loop goes on
    reason = f"state dir {tmp_path / 'state'} not writable: No space left on device (ENOSPC)"
    ready, reasons = daemon.readiness()
    assert not ready and reason in reasons
    assert reason in caplog.text and "last checkpoint stands" in caplog.text
    assert "Kafka" not in caplog.text and not any("Kafka unavailable" in r for r in reasons)
    assert daemon.flushed == {}, "offsets committed to the group must stay at the last save"
    assert not daemon._checkpoint_due(), "the next attempt waits a checkpoint interval"
    monkeypatch.undo()
    daemon._save(connection)
    assert reason not in daemon.readiness()[1] and daemon.flushed == {(TOPIC, 0): 99}


def test_a_failed_save_on_revoke_lets_the_rebalance_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = daemon_in(tmp_path / "state")
    fake = FakeConnection()
    daemon.connection = cast(Connection, fake)
    daemon._save(daemon.connection)
    daemon.flushed = {(TOPIC, 0): 5}  # as the last successful checkpoint left it
    full_disk(monkeypatch)
    # Raising here would make kafka-python abort the join and call back again on every
    # poll: the loop of the issue. It must return the last saved offsets, for the client
    # to commit.
    assert daemon.on_revoked([TopicPartition(TOPIC, 0)]) == {TopicPartition(TOPIC, 0): 5}
    assert daemon.store.write_error is not None


def test_a_state_dir_error_in_the_loop_backs_off_and_is_not_called_kafka(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = Daemon(Settings(state_dir=tmp_path / "state",
                             http={"host": "127.0.0.1", "port": 0}))
    turns: list[int] = []

    def step(connection: Connection) -> None:
        turns.append(1)
        if turns.count(1) == 2:
            daemon.stop_requested.set()
        raise StateDirError(f"state dir {tmp_path / 'state'} not writable: Read-only")

    def recover(error: Exception, backoff: float) -> None:
        raise AssertionError(f"the Kafka recovery path ran for {error!r}")

    monkeypatch.setattr(daemon, "_connect", lambda: cast(Connection, FakeConnection()))
    monkeypatch.setattr(daemon, "_step", step)
    monkeypatch.setattr(daemon, "_recover", recover)
    monkeypatch.setattr(daemon.stop_requested, "wait", lambda timeout: turns.append(0))
    with caplog.at_level(logging.INFO):
        assert daemon.run() == 0
    assert turns == [1, 0, 1, 0], "each failure waits its back-off, then the loop goes on"
    assert "not writable: Read-only; retrying in 1 s" in caplog.text
    assert "retrying in 2 s" in caplog.text and "Kafka unavailable" not in caplog.text


def test_the_configured_key_reaches_the_store(tmp_path: Path) -> None:
    key = "k" * 40
    daemon = daemon_in(tmp_path / "state", checkpoint={"key": key})
    daemon._save(cast(Connection, FakeConnection()))
    assert not daemon.store.key_path.exists()
    assert daemon_in(tmp_path / "state", checkpoint={"key": key}).store.loaded_from
    with pytest.raises(StateError, match="no key to authenticate it"):
        daemon_in(tmp_path / "state")
