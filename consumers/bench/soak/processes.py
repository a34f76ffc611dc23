"""What the soak runs and disrupts: ``stream-al run`` in its own process, and the
broker (its own local Apache Kafka, which it may stop, or one it was given)."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from consumers.bench.soak.options import SoakError
from consumers.settings import Settings

_RUN_DAEMON = "from consumers.cli import main; main()"
_PR_SET_PDEATHSIG = 1
#: The daemon's counters the soak sums over restarts, by (sample name, outcome label).
_COUNTERS = {
    "records_predicted": ("stream_al_records_total", "predicted"),
    "records_queried": ("stream_al_records_total", "queried"),
    "records_dead_letter": ("stream_al_records_total", "dead_letter"),
    "labels_applied": ("stream_al_labels_total", "applied"),
    "labels_duplicate": ("stream_al_labels_total", "duplicate"),
    "labels_unknown_query": ("stream_al_labels_total", "unknown_query"),
    "labels_expired": ("stream_al_labels_total", "expired"),
    "labels_invalid": ("stream_al_labels_total", "invalid"),
}
_GAUGES = {"pending_queries": "stream_al_pending_queries"}
#: The counters whose sum is the records one process has handled.
HANDLED = ("records_predicted", "records_queried", "records_dead_letter")


def parse_metrics(text: str) -> dict[str, float]:
    """The soak's counters and gauges from a /metrics page.

    >>> page = ('stream_al_labels_total{outcome="applied"} 3.0\\n'
    ...         'stream_al_pending_queries 2.0\\n')
    >>> parse_metrics(page)["labels_applied"], parse_metrics(page)["pending_queries"]
    (3.0, 2.0)
    """
    found = dict.fromkeys([*_COUNTERS, *_GAUGES], 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for field, (name, outcome) in _COUNTERS.items():
                if sample.name == name and sample.labels.get("outcome") == outcome:
                    found[field] += sample.value
            for field, name in _GAUGES.items():
                if sample.name == name:
                    found[field] = sample.value
    return found


def _dies_with_us() -> Callable[[], object] | None:
    """Linux: SIGKILL the daemon if the soak itself is killed, so none is left behind
    (only ever started from the main thread, which lives as long as the soak)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class DaemonProcess:
    """``stream-al run`` on one settings file and state dir, across restarts; its
    output (every life of it) goes to one log."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.config = workdir / "daemon.json"
        self.config.write_text(settings.model_dump_json(), encoding="utf-8")
        self.log = workdir / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        # The file must be the whole truth: STREAM_AL_* variables would override it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_AL_")}
        with self.log.open("ab") as log:
            log.write(f"--- soak: start {self.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                [sys.executable, "-c", _RUN_DAEMON, "run", "--config", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_dies_with_us())
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no checkpoint, no commit, no leaving the group."""
        if self.process is not None and self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM, as an orchestrator stops it: the final checkpoint is written."""
        if self.process is None:
            return None
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def rss_mb(self) -> float | None:
        """Resident memory from /proc (VmRSS), None if the process is gone."""
        pid = self.pid
        if pid is None:
            return None
        try:
            for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        except (OSError, ValueError, IndexError):
            return None
        return None

    def scrape(self) -> dict[str, float] | None:
        """The daemon's counters from /metrics; None while it does not answer."""
        url = f"http://127.0.0.1:{self.settings.http.port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - local URL
                return parse_metrics(response.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None


class Broker(Protocol):
    bootstrap: str
    can_stop: bool
    description: str

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def close(self) -> None: ...


class GivenBroker:
    """Someone else's broker: used, never stopped."""

    can_stop = False

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.description = "external broker (version not probed)"

    def stop(self) -> None:
        raise SoakError("the soak does not stop a broker it was given")

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None


class OwnBroker:
    """A local Apache Kafka of the soak's own, stopped and started on the same ports
    (clients keep their bootstrap address) with its data kept between lives.

    Every start and stop runs on one thread that lives as long as this object: the JVM
    is told to die with its parent, and Linux counts the *thread* that started it as
    the parent, so a broker started from a short-lived thread dies with that thread.
    """

    can_stop = True

    def __init__(self, name: str) -> None:
        from consumers.kafka_local import KAFKA_VERSION, LocalKafka

        self.name = name
        self.description = f"Apache Kafka {KAFKA_VERSION} (local, KRaft, single node)"
        self._local = LocalKafka(name, die_with_parent=True)
        self._calls: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._done: queue.Queue[tuple[object, BaseException | None]] = queue.Queue()
        self._keeper = threading.Thread(target=self._keep, name="soak-broker-keeper",
                                        daemon=True)
        self._keeper.start()
        self.bootstrap = str(self._call(self._local.start))
        self._ports = self._read_ports()

    def stop(self) -> None:
        self._call(self._local.stop)

    def start(self) -> None:
        from consumers.kafka_local import LocalKafka

        broker, controller = self._ports
        self._local = LocalKafka(self.name, port=broker, controller_port=controller,
                                 die_with_parent=True)
        address = self._call(self._local.start)
        if address != self.bootstrap:
            raise SoakError(f"the broker came back on {address}, not {self.bootstrap}")

    def close(self) -> None:
        try:
            self._call(self._local.discard)
        finally:
            self._calls.put(None)
            self._keeper.join(timeout=30)

    def _call(self, function: Callable[[], object]) -> object:
        self._calls.put(function)
        value, error = self._done.get()
        if error is not None:
            raise error
        return value

    def _keep(self) -> None:
        while (function := self._calls.get()) is not None:
            try:
                self._done.put((function(), None))
            except BaseException as error:  # handed to the caller's thread
                self._done.put((None, error))

    def _read_ports(self) -> tuple[int, int]:
        from consumers.kafka_local.state import read_state

        state = read_state(self._local.run_dir / "state.json")
        if state is None:
            raise SoakError(f"local broker {self.name!r} started but left no state file")
        return state.broker_port, state.controller_port
