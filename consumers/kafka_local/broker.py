"""``LocalKafka``: one named, real Apache Kafka broker on 127.0.0.1 for tests and demos."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import TracebackType

from consumers.kafka_local import process
from consumers.kafka_local.config import (
    Ports,
    choose_ports,
    render_log4j2,
    render_server_properties,
)
from consumers.kafka_local.errors import BrokerExited, BrokerStartError, KafkaLocalError
from consumers.kafka_local.jars import KAFKA_VERSION, cache_root, ensure_jars, jars_ready
from consumers.kafka_local.locking import file_lock
from consumers.kafka_local.probe import broker_answers, wait_until_ready
from consumers.kafka_local.state import BrokerState, read_state, write_state
from consumers.kafka_local.tools import require_tools

_LAUNCH_ATTEMPTS = 3  # a free port may be taken by someone else before the JVM binds it


def cluster_id() -> str:
    """A Kafka cluster id (base64url of 16 random bytes), made without starting a JVM.

    >>> len(cluster_id())
    22
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # Kafka's own generator never starts one with '-'
            return text


class LocalKafka:
    """A single-node KRaft broker; ``name`` keeps several instances apart.

    Its files live in ``<cache>/kafka-local/<name>/`` (state, config, logs, and the data
    unless ``data_dir`` is given). Use ``start()``/``stop()`` or ``with LocalKafka() as k``.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        port: int | None = None,
        controller_port: int | None = None,
        data_dir: Path | None = None,
        cache_dir: Path | None = None,
        kafka_version: str = KAFKA_VERSION,
        start_timeout: float = 90.0,
        stop_grace: float = 15.0,
        die_with_parent: bool = False,
    ) -> None:
        self.name, self.kafka_version = name, kafka_version
        self.cache_dir = cache_dir or cache_root()
        self.run_dir = self.cache_dir / "kafka-local" / name
        self.data_dir = (data_dir or self.run_dir / "data").resolve()
        self.log_file = self.run_dir / "broker.log"
        self._wanted = (port, controller_port)
        self._timeouts = (start_timeout, stop_grace)
        self._die_with_parent = die_with_parent
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def _state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def _jvm_out(self) -> Path:
        return self.run_dir / "jvm.out"  # JVM errors from before log4j takes over

    @property
    def _properties(self) -> Path:
        return self.run_dir / "server.properties"

    def start(self) -> str:
        """Start the broker, or find this name's running one; return its bootstrap address."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.run_dir / ".lock"):
            running = self._running()
            return running.bootstrap if running else self._launch()

    def status(self) -> str | None:
        """The bootstrap address if this name's broker is running and answers, else None."""
        state = read_state(self._state_file)
        if state is None or not process.runs_broker(state.pid, self._properties):
            return None
        return state.bootstrap if broker_answers(state.bootstrap) else None

    def stop(self) -> bool:
        """Stop this name's broker; False if none was running."""
        if not self.run_dir.is_dir():
            return False
        with file_lock(self.run_dir / ".lock"):
            state = read_state(self._state_file)
            was_running = state is not None and process.runs_broker(state.pid, self._properties)
            if state is not None and was_running:
                process.terminate(state.pid, state.pgid, grace=self._timeouts[1], child=self._child)
            self._state_file.unlink(missing_ok=True)
            self._child = None
            return was_running

    def discard(self) -> None:
        """Stop the broker and delete its folder: state, config, logs (and data kept there)."""
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    @property
    def bootstrap(self) -> str:
        """The running broker's ``127.0.0.1:PORT`` (KafkaLocalError if none is recorded)."""
        state = read_state(self._state_file)
        if state is None:
            raise KafkaLocalError(f"no local broker named {self.name!r} is running")
        return state.bootstrap

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _running(self) -> BrokerState | None:
        state = read_state(self._state_file)
        if state is None or not process.runs_broker(state.pid, self._properties):
            self._state_file.unlink(missing_ok=True)  # stale: the broker died or was killed
            return None
        if not broker_answers(state.bootstrap, timeout=10.0):
            raise KafkaLocalError(
                f"broker {self.name!r} (pid {state.pid}) runs but does not answer on "
                f"{state.bootstrap}; stop it first: scripts/kafka-local stop --name {self.name}"
            )
        return state

    def _launch(self) -> str:
        java = require_tools(need_maven=not jars_ready(self.kafka_version, self.cache_dir))
        libs = ensure_jars(self.kafka_version, self.cache_dir)
        for attempt in range(1, _LAUNCH_ATTEMPTS + 1):
            ports = choose_ports(*self._wanted)
            try:
                return self._launch_on(java, libs, ports)
            except BrokerExited:
                if attempt == _LAUNCH_ATTEMPTS or self._wanted != (None, None):
                    raise
                _say(f"start failed on ports {ports}; trying other free ports")
        raise AssertionError("unreachable")

    def _launch_on(self, java: Path, libs: Path, ports: Ports) -> str:
        child = self._spawn(java, libs, ports)
        write_state(self._state_file, self._state_of(child, ports))  # `stop` can always find it
        try:
            seconds = wait_until_ready(
                ports.bootstrap, lambda: child.poll() is None, self._timeouts[0]
            )
        except BrokerStartError as error:
            process.terminate(child.pid, child.pid, grace=5.0, child=child)
            self._state_file.unlink(missing_ok=True)
            raise type(error)(f"{error}\n{self._log_tails()}") from None
        self._child = child
        _say(f"broker {self.name!r} ready on {ports.bootstrap} in {seconds:.1f}s (pid {child.pid})")
        return ports.bootstrap

    def _spawn(self, java: Path, libs: Path, ports: Ports) -> subprocess.Popen[bytes]:
        log4j = self._write_config(ports)
        classpath = ["-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={log4j}"]
        self._format_storage([str(java), *classpath])
        heap = ["-Xms256m", "-Xmx512m", "-Djava.awt.headless=true"]
        return process.spawn(
            [str(java), *heap, *classpath, "kafka.Kafka", str(self._properties)],
            self._jvm_out,
            die_with_parent=self._die_with_parent,
        )

    def _state_of(self, child: subprocess.Popen[bytes], ports: Ports) -> BrokerState:
        return BrokerState(
            pid=child.pid,
            pgid=child.pid,  # start_new_session made the JVM its own group leader
            broker_port=ports.broker,
            controller_port=ports.controller,
            bootstrap=ports.bootstrap,
            data_dir=str(self.data_dir),
            kafka_version=self.kafka_version,
        )

    def _write_config(self, ports: Ports) -> Path:
        self._properties.write_text(render_server_properties(ports, self.data_dir), "utf-8")
        log4j = self.run_dir / "log4j2.xml"
        log4j.write_text(render_log4j2(self.log_file), "utf-8")
        return log4j

    def _format_storage(self, java_cp: list[str]) -> None:
        """Format the data dir once; a formatted one keeps its topics across restarts."""
        if (self.data_dir / "meta.properties").is_file():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tool = [*java_cp, "kafka.tools.StorageTool", "format", "-c", str(self._properties)]
        done = subprocess.run(  # noqa: S603  # an argument list, never a shell
            [*tool, "-t", cluster_id(), "--standalone"], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BrokerStartError(
                f"formatting {self.data_dir} failed:\n{done.stdout}{done.stderr}"
            )

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- tail of {log} ---\n{process.tail(log)}" for log in (self.log_file, self._jvm_out)
        )


def reap_orphans(prefix: str, cache_dir: Path | None = None) -> list[str]:
    """Discard instances named ``<prefix><pid>`` whose owning process ``pid`` is gone.

    A test session killed with SIGKILL runs no teardown; the next one cleans up after it.
    """
    reaped = []
    for run_dir in ((cache_dir or cache_root()) / "kafka-local").glob(f"{prefix}*"):
        owner = run_dir.name.removeprefix(prefix)
        if owner.isdigit() and not process.pid_alive(int(owner)):
            LocalKafka(run_dir.name, cache_dir=cache_dir).discard()
            reaped.append(run_dir.name)
    return reaped


def _say(message: str) -> None:
    print(f"kafka-local: {message}", file=sys.stderr)
