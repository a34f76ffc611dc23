"""Every command that needs a broker says the same thing when none answers, and exits 3;
the daemon says the same and keeps retrying.

Two wrong addresses: a closed port on this machine, and a name no DNS resolves. Each
command says first how long it waits (its bootstrap timeout), then names the setting to
fix, in exactly those two lines: kafka-python's own warnings stay off.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consumers.daemon.connection import BOOTSTRAP_TIMEOUT_MS as DAEMON_TIMEOUT_MS
from consumers.kafka.clients import BOOTSTRAP_TIMEOUT_MS

pytestmark = pytest.mark.slow

COMMANDS = [["topics", "create"], ["oracle", "simulate", "--idle-exit", "1"],
            ["oracle", "label"], ["desk", "--port", "0"], ["produce", "--simulate",
                                                           "--records", "1"],
            ["tail", "predictions"]]
ADDRESSES = ["127.0.0.1:1", "nosuchhost.invalid:9092"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "STREAM_AL_STATE_DIR": str(tmp_path),
           "STREAM_AL_DESK__LABELER": "eng-1", "STREAM_AL_HTTP__PORT": "0"}
    return env | ({"PYTHONPATH": path} if (path := os.environ.get("PYTHONPATH")) else {})


def _announced(address: str, timeout_ms: int) -> str:
    return f"connecting to Kafka at {address} (up to {timeout_ms // 1000} s)…"


def _message(address: str, timeout_ms: int) -> str:
    return (f"no Kafka broker answers at {address} (waited {timeout_ms // 1000} s): check "
            "kafka.bootstrap_servers (env STREAM_AL_KAFKA__BOOTSTRAP_SERVERS or "
            "--bootstrap-servers) and that the broker is up")


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_no_broker_is_one_clear_message_and_exit_3(command: list[str], address: str,
                                                   tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "consumers", *command, "--bootstrap-servers", address],
        capture_output=True, text=True, env=_env(tmp_path), stdin=subprocess.DEVNULL,
        timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    announced, said = result.stderr.splitlines()  # nothing else: no kafka-python lines
    assert announced == _announced(address, BOOTSTRAP_TIMEOUT_MS)
    name = " ".join(command[:2]) if command[0] in ("oracle", "topics") else command[0]
    ending = "; nothing was sent" if command[0] == "produce" else ""
    assert said == f"stream-al {name}: {_message(address, BOOTSTRAP_TIMEOUT_MS)}{ending}"
    # Reported, not asserted: wall time on a shared 2-core runner says little (a 10 s
    # bootstrap took 15–21 s at load 3–4). One bootstrap, not one per client, is held by
    # the desk test below, which counts them.
    print(f"{' '.join(command)} {address}: exit 3 after {elapsed:.1f} s")


def test_the_desk_with_no_broker_stops_after_one_bootstrap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from consumers.kafka.sink import KafkaSink
    from consumers.oracle.desk import service as desk_service
    from consumers.settings import Settings
    from stream_al.errors import BrokerUnavailable

    attempts: list[str] = []

    def no_broker(*args: object, **kwargs: object) -> None:
        attempts.append("bootstrap")
        raise BrokerUnavailable("no Kafka broker answers")

    monkeypatch.setattr(desk_service, "create_topics", no_broker)
    monkeypatch.setattr(KafkaSink, "connect", no_broker)
    service = desk_service.DeskService(Settings(desk={"labeler": "eng-1"}))
    with pytest.raises(BrokerUnavailable):
        service.start()
    assert attempts == ["bootstrap"]  # the claims topic's; the producer is never tried


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_daemon_says_so_and_keeps_retrying(address: str, tmp_path: Path) -> None:
    daemon = subprocess.Popen(
        [sys.executable, "-m", "consumers", "run", "--bootstrap-servers", address],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
        stdin=subprocess.DEVNULL)
    assert daemon.stderr is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        # Two failed attempts: still running after the first, retrying.
        while sum(_message(address, DAEMON_TIMEOUT_MS) in line for line in lines) < 2:
            assert time.monotonic() < deadline, "\n".join(lines)
            lines.append(daemon.stderr.readline().rstrip("\n"))
            assert daemon.poll() is None, "\n".join(lines)
        daemon.send_signal(signal.SIGTERM)
        _, rest = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
        daemon.wait()  # reaped here, or its Popen warns in whichever test runs next
        daemon.stderr.close()
    lines += rest.splitlines()
    assert daemon.returncode == 0, "\n".join(lines)
    assert _announced(address, DAEMON_TIMEOUT_MS) in lines
    # Our own log lines only (the format names the logger): kafka-python's stay off.
    loggers = {m.group(1) for line in lines
               if (m := re.match(r"\S+ \S+ [A-Z]+ ([\w.]+): ", line))}
    assert loggers == {"stream_al.daemon"}, "\n".join(lines)
    assert "Traceback" not in "\n".join(lines)
