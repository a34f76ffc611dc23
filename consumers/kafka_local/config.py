"""What the local broker is told: its ports, server.properties and log4j2 configuration."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from consumers.kafka_local.errors import KafkaLocalError

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    """The client (PLAINTEXT) and KRaft controller ports of one broker."""

    broker: int
    controller: int

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.broker}"


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if ``port`` can be bound now (SO_REUSEADDR, as Java binds, so TIME_WAIT is free)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST, *, avoid: frozenset[int] = frozenset()) -> int:
    """A port the kernel just handed out, not in ``avoid``."""
    while True:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port: int = probe.getsockname()[1]
        if port not in avoid:
            return port


def choose_ports(broker: int | None = None, controller: int | None = None) -> Ports:
    """The requested ports if free (else KafkaLocalError), free ones for those not given."""
    for wanted in (broker, controller):
        if wanted is not None and not port_is_free(wanted):
            raise KafkaLocalError(f"port {wanted} on {HOST} is in use: choose another or omit it")
    chosen = broker if broker is not None else free_port(avoid=frozenset({controller or 0}))
    other = controller if controller is not None else free_port(avoid=frozenset({chosen}))
    if chosen == other:
        raise KafkaLocalError(f"broker and controller ports must differ (both {chosen})")
    return Ports(broker=chosen, controller=other)


def escape_property(value: str) -> str:
    return value.replace("\\", "\\\\")  # java.util.Properties reads backslash as an escape


@dataclass(frozen=True)
class Listeners:
    """The client listener's name and security protocol, the controller's, and any lines
    the protocols need (SASL, TLS, the authorizer)."""

    client: str = "PLAINTEXT"
    client_protocol: str = "PLAINTEXT"
    controller_protocol: str = "PLAINTEXT"
    extra: Mapping[str, str] = field(default_factory=dict)


PLAINTEXT = Listeners()


def _listener_settings(ports: Ports, listeners: Listeners) -> dict[str, str]:
    client = listeners.client
    return {
        "listeners": f"{client}://{HOST}:{ports.broker},CONTROLLER://{HOST}:{ports.controller}",
        "advertised.listeners": f"{client}://{HOST}:{ports.broker}",
        "listener.security.protocol.map": (
            f"{client}:{listeners.client_protocol},CONTROLLER:{listeners.controller_protocol}"
        ),
        "inter.broker.listener.name": client,
    }


def render_server_properties(
    ports: Ports, data_dir: Path, listeners: Listeners = PLAINTEXT
) -> str:
    """A single-node KRaft broker+controller on 127.0.0.1, every replication factor 1.

    Topic auto-creation keeps Kafka's default (on), as in the docker-compose broker;
    tests create their topics explicitly with the partition count they need.
    """
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        **_listener_settings(ports, listeners),
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.bootstrap.servers": f"{HOST}:{ports.controller}",
        "log.dirs": escape_property(str(data_dir)),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        # One partition instead of 50: the first transactional or share-group use is quick.
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",  # a test's first join must not wait 3 s
        **listeners.extra,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def render_log4j2(log_file: Path) -> str:
    """log4j2 XML sending INFO and up to a size-capped ``log_file``, fresh at each start.

    log4j's own shutdown hook is off: it would close the file while Kafka still logs
    its shutdown.
    """
    name, pattern = quoteattr(str(log_file)), quoteattr(f"{log_file}.%i")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <RollingFile name="file" fileName={name} filePattern={pattern} append="false">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="20 MB"/>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
  </Loggers>
</Configuration>
"""
