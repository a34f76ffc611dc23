"""Every command that needs a broker says the same thing when none answers, and exits 3.

The address is a closed port on this machine: each command waits out its bootstrap
timeout (10 s), saying so first, then names the setting to fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

COMMANDS = [["topics", "create"], ["oracle", "simulate", "--idle-exit", "1"],
            ["oracle", "label"], ["desk", "--port", "0"], ["produce", "--simulate",
                                                           "--records", "1"],
            ["tail", "predictions"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_no_broker_is_one_clear_message_and_exit_3(command: list[str], tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "STREAM_AL_STATE_DIR": str(tmp_path),
           "STREAM_AL_DESK__LABELER": "eng-1"}
    result = subprocess.run(
        [sys.executable, "-m", "consumers", *command, "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
        check=False)
    assert result.returncode == 3, result.stderr
    assert "connecting to Kafka at 127.0.0.1:1 (up to 10 s)" in result.stderr
    message = " ".join(result.stderr.split())  # rich may wrap the line
    assert "no Kafka broker answers at 127.0.0.1:1 (waited 10 s)" in message
    assert "STREAM_AL_KAFKA__BOOTSTRAP_SERVERS" in message
    assert "Traceback" not in result.stderr
