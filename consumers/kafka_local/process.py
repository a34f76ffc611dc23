"""Start, recognise and stop the broker JVM as a process group of its own."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None]:
    """A pre-exec hook asking Linux to SIGTERM the child when its parent dies.

    libc is looked up before the fork, so the child only makes one plain call.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: list[str], output: Path, *, die_with_parent: bool) -> subprocess.Popen[bytes]:
    """Run ``command`` detached in a new session; stdout and stderr go to ``output``.

    A session of its own keeps a terminal's Ctrl-C away from the broker: stopping is ours.
    """
    hook = _die_with_parent() if die_with_parent and sys.platform == "linux" else None
    with output.open("wb") as sink:
        return subprocess.Popen(  # noqa: S603  # an argument list, never a shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=hook,  # one prctl call in the child, nothing that could deadlock
        )


def _proc_text(pid: int, name: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie awaiting its reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_text(pid, "stat")
    return stat is None or stat.rsplit(")", 1)[-1].split()[0] != "Z"


def runs_broker(pid: int, properties: Path) -> bool:
    """True if ``pid`` is alive and is kafka.Kafka on ``properties`` (not a reused pid)."""
    if not pid_alive(pid):
        return False
    cmdline = _proc_text(pid, "cmdline")
    return cmdline is None or ("kafka.Kafka" in cmdline and str(properties) in cmdline)


def _wait_gone(pid: int, seconds: float, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None:  # our own child must be reaped, or it lingers as a zombie
        try:
            child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + seconds
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def terminate(
    pid: int, pgid: int, *, grace: float, child: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the group (Kafka shuts down cleanly), SIGKILL it after ``grace`` seconds."""
    _signal_group(pgid, signal.SIGTERM)
    if not _wait_gone(pid, grace, child):
        _signal_group(pgid, signal.SIGKILL)
        _wait_gone(pid, 10.0, child)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])
