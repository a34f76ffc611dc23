"""A Connection dropped at a broker outage leaves nothing behind: after each rebuild its
Kafka clients (of either library) are garbage and no thread of theirs is left running.

The daemon drops its whole Connection at each outage, with predictions still
unacknowledged. kafka-python 3.0.12's producer ``close`` raised on its flush timeout
before stopping its sender thread, so every outage left a live sender, its client and its
buffered batches behind (the daemon's RSS stepped up at each outage and never came back,
docs/benchmarks.md, "Soak"). confluent-kafka's producer held each purged message's
delivery callback, and through it the sink, until a flush that waited served its report.

The broker here is a LocalKafka of this test's own, so stopping it hurts no other test.
The connections live in a probe process of their own (release_probe.py, which says why).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.kafka_local import LocalKafka
from tests.daemon_support import Harness, restartable_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGES = 2
SENDS = 20
PROBE = Path(__file__).with_name("release_probe.py")
ROOT = Path(__file__).parents[2]
#: Only bounds a broken test: each outage takes a few seconds.
PROBE_TIMEOUT_S = 300.0
_PREFIX = "pytest-release-"  # + the pid of the session, so an orphan can be reaped


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own on fixed ports, restartable on the same data."""
    with restartable_broker(_PREFIX, tmp_path / "kafka-data") as kafka:
        yield kafka


@pytest.fixture
def harness_bootstrap(broker: LocalKafka) -> str:
    """The ``harness`` (tests/integration/conftest.py) lives on this test's own broker."""
    return broker.bootstrap


def test_connections_dropped_at_outages_leave_no_clients_or_threads(
        broker: LocalKafka, harness: Harness, tmp_path: Path) -> None:
    config = harness.config("daemon", state_dir=tmp_path / "state")
    report: dict[str, list[object]] = {}
    with subprocess.Popen(
            [sys.executable, str(PROBE), str(config), harness.topics.predictions,
             str(OUTAGES), str(SENDS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=ROOT) as probe:
        assert probe.stdin is not None and probe.stdout is not None
        for line in probe.stdout:
            if line.strip() in ("stop", "start"):
                broker.stop() if line.strip() == "stop" else broker.start()
                probe.stdin.write("ok\n")
                probe.stdin.flush()
            elif line.startswith("{"):
                report = json.loads(line)
        probe.stdin.close()
        assert probe.wait(timeout=PROBE_TIMEOUT_S) == 0, "the probe failed: see its stderr"
    assert report["pending_at_drop"] == [SENDS] * OUTAGES, report
    assert report["threads_running"] == [], \
        f"threads of dropped connections still running: {report['threads_running']}"
    assert report["alive"] == [], \
        f"objects of dropped connections still referenced: {report['alive']}"
