"""Is the broker answering? A TCP connect first (cheap, silent), then a metadata request."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from consumers.kafka_local.errors import BrokerExited, BrokerStartError


def _accepts_connections(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def broker_answers(
    bootstrap: str, timeout: float = 5.0, security: Mapping[str, Any] | None = None
) -> bool:
    """True if a kafka-python metadata request to ``bootstrap`` succeeds within ``timeout``.

    ``security``: kafka-python keyword arguments that log in (a secured broker).
    """
    host, _, port = bootstrap.rpartition(":")
    if not _accepts_connections(host, int(port), timeout):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            bootstrap_timeout_ms=int(timeout * 1000),
            request_timeout_ms=int(timeout * 1000),
            client_id="stream-al-kafka-local-probe",
            **(security or {}),
        )
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return True


def wait_until_ready(
    bootstrap: str,
    still_running: Callable[[], bool],
    timeout: float,
    security: Mapping[str, Any] | None = None,
) -> float:
    """Poll until the broker answers; return the seconds it took.

    Raises BrokerExited if the process exits first, BrokerStartError once ``timeout`` passes.
    """
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if not still_running():
            raise BrokerExited(f"the broker exited before answering on {bootstrap}")
        if broker_answers(bootstrap, timeout=2.0, security=security):
            return time.monotonic() - began
        time.sleep(0.25)
    raise BrokerStartError(f"the broker did not answer on {bootstrap} within {timeout:.0f}s")
