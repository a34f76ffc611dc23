"""A restored checkpoint that resumes below what a topic still holds (retention deleted
it) is a WARNING naming topic, partition and both offsets, and a metric; once per gap.

The broker's side is faked: kafka-python has no DeleteRecords, and a retention that
deletes within a test needs a broker tuned for it. The comparison itself is what the
daemon runs, on a real checkpoint in tmp_path."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import pytest

from consumers.daemon.connection import Connection
from consumers.daemon.loop import Daemon
from tests.unit.test_checkpoints_daemon import FakeConnection, daemon_in

LABELS = "stream-al.oracle.labels"


class Kept(FakeConnection):
    """A connection whose topics start where retention left them."""

    def __init__(self, earliest: dict[tuple[str, int], int]) -> None:
        super().__init__()
        self.kept = earliest

    def earliest(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {p: self.kept.get(p, 0) for p in partitions}

    def close(self) -> None:
        pass


def restored(state_dir: Path, offsets: dict[tuple[str, int], int]) -> Daemon:
    first = daemon_in(state_dir)
    assert first.pipeline is not None
    first.pipeline.offsets.update(offsets)
    first._save(cast(Connection, FakeConnection()))
    return daemon_in(state_dir)  # a restart: restores that checkpoint


def gaps(daemon: Daemon, topic: str) -> float | None:
    return daemon.registry.get_sample_value("stream_al_retention_gap_messages_total",
                                            {"topic": topic})


def test_a_restore_below_the_earliest_offset_kept_is_a_warning_and_a_metric(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = restored(tmp_path / "state", {(LABELS, 0): 40, ("ate.parametric", 2): 500})
    connection = Kept({(LABELS, 0): 100, ("ate.parametric", 2): 120})
    monkeypatch.setattr(Connection, "open", lambda *args: connection)
    with caplog.at_level(logging.WARNING, logger="stream_al.daemon"):
        daemon._connect()  # the first connection after the restore at start
        daemon._disconnect()  # an outage: the same checkpoint restored again, told once
        daemon._restore()
        daemon._connect()
    warnings = [r.getMessage() for r in caplog.records if "restore:" in r.getMessage()]
    assert warnings == [
        f"restore: the checkpoint resumes {LABELS}[0] at offset 40, but the topic now starts "
        "at offset 100: 60 messages were deleted by retention before this replica read "
        "them (labels never learnt); keep the topic longer (the retention.* settings) or "
        "this replica's downtime shorter"]
    assert gaps(daemon, LABELS) == 60
    assert gaps(daemon, "ate.parametric") is None  # 500 ≥ 120: nothing lost there


def test_a_restore_the_topics_still_cover_says_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    daemon = restored(tmp_path / "state", {(LABELS, 0): 40})
    with caplog.at_level(logging.WARNING, logger="stream_al.daemon"):
        daemon._check_restore(cast(Connection, Kept({(LABELS, 0): 40})))
    assert "restore:" not in caplog.text
