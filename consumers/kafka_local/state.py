"""The state file that lets ``stop`` and ``status`` find a broker started by another process."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from consumers.kafka_local.config import Ports


@dataclass(frozen=True)
class BrokerState:
    """One running broker: its process (group) and where it listens."""

    pid: int
    pgid: int
    broker_port: int
    controller_port: int
    bootstrap: str
    data_dir: str
    kafka_version: str
    #: The secured broker's CA and credentials (``secure.SecureFiles``); None: PLAINTEXT.
    #: Last and defaulted, so the state file of an older start still reads.
    secure_dir: str | None = None

    @property
    def ports(self) -> Ports:
        return Ports(broker=self.broker_port, controller=self.controller_port)


def write_state(path: Path, state: BrokerState) -> None:
    """Write atomically, so a reader never sees half a file."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def write_ports(path: Path, ports: Ports) -> None:
    """Remember where this name's broker listened, for its next start (kept by ``stop``)."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"broker": ports.broker, "controller": ports.controller})
                       + "\n", encoding="utf-8")
    os.replace(partial, path)


def read_ports(path: Path) -> Ports | None:
    """The ports of this name's last start, or None if none is remembered."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return Ports(broker=int(saved["broker"]), controller=int(saved["controller"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def read_state(path: Path) -> BrokerState | None:
    """The recorded broker, or None if there is no readable state file."""
    try:
        return BrokerState(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
