"""One message, in every command, for a broker that does not answer."""

from __future__ import annotations

import sys

from consumers.kafka.clients import BOOTSTRAP_TIMEOUT_MS
from consumers.settings import KafkaSettings
from stream_al.errors import BrokerUnavailable

#: The exit status of every command that found no broker (``produce`` documents it).
EXIT_NO_BROKER = 3


def unreachable(kafka: KafkaSettings) -> BrokerUnavailable:
    """The error for a bootstrap that found no broker: where it looked and how to fix it.

    >>> str(unreachable(KafkaSettings(bootstrap_servers=["k1:9092"]))).split(":")[0:2]
    ['no Kafka broker answers at k1', '9092 (waited 10 s)']
    """
    servers = ",".join(kafka.bootstrap_servers)
    return BrokerUnavailable(
        f"no Kafka broker answers at {servers} (waited {BOOTSTRAP_TIMEOUT_MS / 1000:.0f} s): "
        "check kafka.bootstrap_servers (env STREAM_AL_KAFKA__BOOTSTRAP_SERVERS or "
        "--bootstrap-servers) and that the broker is up")


def announce(kafka: KafkaSettings) -> None:
    """Say on stderr that we are waiting, so a wrong address is not a silent pause."""
    print(f"connecting to Kafka at {','.join(kafka.bootstrap_servers)} "
          f"(up to {BOOTSTRAP_TIMEOUT_MS / 1000:.0f} s)…", file=sys.stderr, flush=True)
