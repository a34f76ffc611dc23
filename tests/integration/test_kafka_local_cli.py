"""``scripts/kafka-local`` as a person uses it: start twice, status, stop, status."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka-local"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def kafka_local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=180,
                          env=os.environ.copy(), check=False)


@pytest.fixture
def name() -> Iterator[str]:
    instance = f"cli-test-{uuid.uuid4().hex[:8]}"
    yield instance
    kafka_local("stop", "--name", instance)  # whatever the test did, nothing is left running


def test_start_is_idempotent_status_tells_and_stop_stops(name: str) -> None:
    first = kafka_local("start", "--name", name)
    assert first.returncode == 0, first.stderr
    bootstrap = first.stdout.strip()
    assert bootstrap.startswith("127.0.0.1:") and "\n" not in bootstrap  # stdout: address only
    second = kafka_local("start", "--name", name)
    assert (second.returncode, second.stdout.strip()) == (0, bootstrap)
    status = kafka_local("status", "--name", name)
    assert (status.returncode, status.stdout.strip()) == (0, bootstrap)
    pid = _broker_pid(name)
    assert pid is not None
    stopped = kafka_local("stop", "--name", name)
    assert stopped.returncode == 0
    assert kafka_local("status", "--name", name).returncode != 0
    assert not _running(pid)
    assert kafka_local("stop", "--name", name).returncode == 0  # stopping twice is fine


def test_a_start_after_a_stop_listens_on_the_same_port(name: str) -> None:
    """Clients configured for the first address (a daemon waiting out the outage)
    reconnect after the restart without being told a new one."""
    first = kafka_local("start", "--name", name)
    assert first.returncode == 0, first.stderr
    assert kafka_local("stop", "--name", name).returncode == 0
    again = kafka_local("start", "--name", name)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == first.stdout.strip()
    assert kafka_local("status", "--name", name).stdout.strip() == first.stdout.strip()


def _running(pid: int) -> bool:
    """Alive and not a zombie: the broker is reparented to PID 1, which reaps it later."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _broker_pid(name: str) -> int | None:
    found = subprocess.run(["pgrep", "-f", f"kafka-local/{name}/"], capture_output=True,
                           text=True, check=False)
    pids = [int(p) for p in found.stdout.split()]
    return pids[0] if pids else None
