"""``LocalKafka``: one named, real Apache Kafka broker on 127.0.0.1 for tests and demos."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from consumers.kafka_local import process
from consumers.kafka_local.certs import make_certificates
from consumers.kafka_local.config import (
    PLAINTEXT,
    Ports,
    choose_ports,
    port_is_free,
    render_log4j2,
    render_server_properties,
)
from consumers.kafka_local.errors import BrokerExited, BrokerStartError, KafkaLocalError
from consumers.kafka_local.jars import KAFKA_VERSION, cache_root, ensure_jars, jars_ready
from consumers.kafka_local.locking import file_lock
from consumers.kafka_local.probe import broker_answers, wait_until_ready
from consumers.kafka_local.secure import (
    ADMIN,
    Credentials,
    SecureFiles,
    add_scram_users,
    check_principal,
    client_security,
    connection_info,
    load_credentials,
    save_credentials,
    scram_arguments,
    secure_listeners,
    write_private,
)
from consumers.kafka_local.state import (
    BrokerState,
    read_ports,
    read_state,
    write_ports,
    write_state,
)
from consumers.kafka_local.tools import require_openssl, require_tools

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

    ``secure=True``: a SASL_SSL listener (SCRAM-SHA-512) with ACLs instead of PLAINTEXT;
    ``admin`` (the super user) and each of ``principals`` get a password, saved in the
    run dir and added when the data dir is formatted, or later as admin (see
    ``consumers.kafka_local.secure``). ``client_options(principal)`` logs a kafka-python
    client in.
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
        secure: bool = False,
        principals: Iterable[str] = (),
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
        self.secure = secure
        self.principals = tuple(check_principal(principal) for principal in principals)
        if self.principals and not secure:
            raise KafkaLocalError("principals need a secured broker (secure=True / --secure)")
        self.secure_files = SecureFiles(self.run_dir / "secure")

    @property
    def _state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def _ports_file(self) -> Path:
        return self.run_dir / "ports.json"  # outlives `stop`, unlike the state file

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
            bootstrap = running.bootstrap if running else self._launch()
            if self.secure:
                self._add_principals()
            return bootstrap

    def status(self) -> str | None:
        """The bootstrap address if this name's broker is running and answers, else None."""
        state = read_state(self._state_file)
        if state is None or not process.runs_broker(state.pid, self._properties):
            return None
        answers = broker_answers(state.bootstrap, security=_admin_login(state))
        return state.bootstrap if answers else None

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
        return self._recorded().bootstrap

    def client_options(self, principal: str = ADMIN) -> dict[str, Any]:
        """kafka-python keyword arguments for the running broker; a secured one is logged
        in to as ``principal``."""
        state = self._recorded()
        options: dict[str, Any] = {"bootstrap_servers": state.bootstrap}
        if state.secure_dir is not None:
            files = SecureFiles(Path(state.secure_dir))
            options |= client_security(files, _credentials(files), principal)
        return options

    def connection_info(self) -> dict[str, Any] | None:
        """The running secured broker's bootstrap, protocol, CA and credentials file (no
        password); None for a PLAINTEXT one."""
        state = self._recorded()
        if state.secure_dir is None:
            return None
        files = SecureFiles(Path(state.secure_dir))
        return connection_info(state.bootstrap, files, _credentials(files))

    def _recorded(self) -> BrokerState:
        state = read_state(self._state_file)
        if state is None:
            raise KafkaLocalError(f"no local broker named {self.name!r} is running")
        return state

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
        if not broker_answers(state.bootstrap, timeout=10.0, security=_admin_login(state)):
            raise KafkaLocalError(
                f"broker {self.name!r} (pid {state.pid}) runs but does not answer on "
                f"{state.bootstrap}; stop it first: scripts/kafka-local stop --name {self.name}"
            )
        return state

    def _launch(self) -> str:
        java = require_tools(need_maven=not jars_ready(self.kafka_version, self.cache_dir))
        libs = ensure_jars(self.kafka_version, self.cache_dir)
        credentials = self._prepare_security() if self.secure else None
        wanted = self._wanted_ports()
        for attempt in range(1, _LAUNCH_ATTEMPTS + 1):
            ports = choose_ports(*wanted)
            try:
                bootstrap = self._launch_on(java, libs, ports, credentials)
            except BrokerExited:
                if attempt == _LAUNCH_ATTEMPTS or self._wanted != (None, None):
                    raise
                wanted = (None, None)
                _say(f"start failed on ports {ports}; trying other free ports")
                continue
            write_ports(self._ports_file, ports)
            return bootstrap
        raise AssertionError("unreachable")

    def _wanted_ports(self) -> tuple[int | None, int | None]:
        """The ports asked for; else the ones of this name's last start, so clients
        configured for it (a daemon waiting out an outage) reconnect; else free ones."""
        if self._wanted != (None, None):
            return self._wanted
        last = read_ports(self._ports_file)
        if last is None:
            return None, None
        if port_is_free(last.broker) and port_is_free(last.controller):
            return last.broker, last.controller
        _say(f"port {last.broker} or {last.controller} of the last start of {self.name!r} is "
             "taken by another process; starting on free ports (clients need the new address)")
        return None, None

    def _prepare_security(self) -> Credentials:
        """The credentials (saved) and certificates to start the secured broker with.

        A data dir not formatted yet gets every principal's SCRAM credential at format
        time, so none is missing while the broker starts; one formatted before keeps the
        principals it has (``_add_principals`` adds the others once it answers).
        """
        files = self.secure_files
        files.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        files.folder.chmod(0o700)
        saved = load_credentials(files.credentials)
        if self._formatted() and saved is None:
            raise KafkaLocalError(
                f"{self.data_dir} was formatted without --secure (no admin credentials in "
                f"{files.credentials}): remove it (its topics go with it), or use another "
                "--data-dir or --name"
            )
        if saved is not None and self._formatted():
            credentials = saved
        else:
            credentials = (saved or Credentials.create(())).including(self.principals)
        if saved is None or not files.have_certificates():
            make_certificates(files, credentials.keystore_password, require_openssl(), self.name)
        save_credentials(files.credentials, credentials)
        return credentials

    def _add_principals(self) -> None:
        """Give the running secured broker the principals asked for that it lacks."""
        state = self._recorded()
        if state.secure_dir is None:
            raise KafkaLocalError(
                f"broker {self.name!r} runs without --secure; stop it first: "
                f"scripts/kafka-local stop --name {self.name}"
            )
        files = SecureFiles(Path(state.secure_dir))
        credentials = _credentials(files)
        missing = credentials.missing(self.principals)
        if missing:
            extended = credentials.including(missing)
            add_scram_users(self.client_options(), {n: extended.password(n) for n in missing})
            save_credentials(files.credentials, extended)
            _say(f"added principals {', '.join(missing)} to {self.name!r}")

    def _launch_on(
        self, java: Path, libs: Path, ports: Ports, credentials: Credentials | None
    ) -> str:
        child = self._spawn(java, libs, ports, credentials)
        state = self._state_of(child, ports, credentials is not None)
        write_state(self._state_file, state)  # `stop` can always find it
        try:
            seconds = wait_until_ready(
                ports.bootstrap, lambda: child.poll() is None, self._timeouts[0],
                security=_admin_login(state),
            )
        except BrokerStartError as error:
            process.terminate(child.pid, child.pid, grace=5.0, child=child)
            self._state_file.unlink(missing_ok=True)
            raise type(error)(f"{error}\n{self._log_tails()}") from None
        self._child = child
        kind = "SASL_SSL " if credentials else ""
        _say(f"broker {self.name!r} ready on {kind}{ports.bootstrap} in {seconds:.1f}s "
             f"(pid {child.pid})")  # fmt: skip
        return ports.bootstrap

    def _spawn(
        self, java: Path, libs: Path, ports: Ports, credentials: Credentials | None
    ) -> subprocess.Popen[bytes]:
        log4j = self._write_config(ports, credentials)
        classpath = ["-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={log4j}"]
        self._format_storage([str(java), *classpath], credentials)
        heap = ["-Xms256m", "-Xmx512m", "-Djava.awt.headless=true"]
        return process.spawn(
            [str(java), *heap, *classpath, "kafka.Kafka", str(self._properties)],
            self._jvm_out,
            die_with_parent=self._die_with_parent,
        )

    def _state_of(
        self, child: subprocess.Popen[bytes], ports: Ports, secure: bool
    ) -> BrokerState:
        return BrokerState(
            pid=child.pid,
            pgid=child.pid,  # start_new_session made the JVM its own group leader
            broker_port=ports.broker,
            controller_port=ports.controller,
            bootstrap=ports.bootstrap,
            data_dir=str(self.data_dir),
            kafka_version=self.kafka_version,
            secure_dir=str(self.secure_files.folder) if secure else None,
        )

    def _write_config(self, ports: Ports, credentials: Credentials | None) -> Path:
        listeners = secure_listeners(self.secure_files, credentials) if credentials else PLAINTEXT
        text = render_server_properties(ports, self.data_dir, listeners)
        if credentials is None:
            self._properties.write_text(text, "utf-8")
        else:
            write_private(self._properties, text)  # the admin's and the keystore's passwords
        log4j = self.run_dir / "log4j2.xml"
        log4j.write_text(render_log4j2(self.log_file), "utf-8")
        return log4j

    def _formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def _format_storage(self, java_cp: list[str], credentials: Credentials | None) -> None:
        """Format the data dir once; a formatted one keeps its topics across restarts."""
        if self._formatted():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tool = format_command(self._properties, cluster_id(), credentials)
        with self._hidden(tool, secret=credentials is not None) as arguments:
            done = subprocess.run(  # noqa: S603  # an argument list, never a shell
                [*java_cp, *arguments], capture_output=True, text=True, check=False
            )
        if done.returncode != 0:
            raise BrokerStartError(
                f"formatting {self.data_dir} failed:\n{done.stdout}{done.stderr}"
            )

    @contextmanager
    def _hidden(self, arguments: list[str], *, secret: bool) -> Iterator[list[str]]:
        """``arguments`` as they are, or when ``secret`` as an @argfile the java launcher
        reads: passwords never show in the process table (``ps`` shows every argument to
        every local user)."""
        if not secret:
            yield arguments
            return
        path = self.run_dir / "format.args"
        write_private(path, java_argfile(arguments))
        try:
            yield [f"@{path}"]
        finally:
            path.unlink(missing_ok=True)

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- tail of {log} ---\n{process.tail(log)}" for log in (self.log_file, self._jvm_out)
        )


def format_command(properties: Path, cluster: str, credentials: Credentials | None
                   ) -> list[str]:
    """``kafka-storage format`` as a main class and its arguments (after the classpath)."""
    command = ["kafka.tools.StorageTool", "format", "-c", str(properties), "-t", cluster,
               "--standalone"]  # fmt: skip
    return command + (scram_arguments(credentials) if credentials else [])


def java_argfile(arguments: list[str]) -> str:
    """A java launcher @argfile: one argument a line, quoted, ``\\`` and ``"`` escaped.

    >>> print(java_argfile(["a b", 'c"d']), end="")
    "a b"
    "c\\"d"
    """
    quoted = ('"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"' for arg in arguments)
    return "".join(f"{line}\n" for line in quoted)


def _credentials(files: SecureFiles) -> Credentials:
    credentials = load_credentials(files.credentials)
    if credentials is None:
        raise KafkaLocalError(f"no readable credentials in {files.credentials}")
    return credentials


def _admin_login(state: BrokerState) -> dict[str, Any] | None:
    """How the probe logs in to the broker of ``state``: as admin if it is secured."""
    if state.secure_dir is None:
        return None
    files = SecureFiles(Path(state.secure_dir))
    return client_security(files, _credentials(files), ADMIN)


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
