"""One message, in every command, for a broker that does not answer."""

from __future__ import annotations

import sys

from consumers.kafka.clients import BOOTSTRAP_TIMEOUT_MS
from consumers.settings import KafkaSettings
from stream_al.errors import BrokerUnavailable

#: The exit status of every command that found no broker (``produce`` documents it).
EXIT_NO_BROKER = 3


def unreachable(kafka: KafkaSettings, timeout_ms: int = BOOTSTRAP_TIMEOUT_MS
                ) -> BrokerUnavailable:
    """The error for a bootstrap that found no broker: where it looked, how long (the
    client's ``bootstrap_timeout_ms``) and how to fix it.

    >>> str(unreachable(KafkaSettings(bootstrap_servers=["k1:9092"]))).split(":")[0:2]
    ['no Kafka broker answers at k1', '9092 (waited 10 s)']
    >>> "(waited 5 s)" in str(unreachable(KafkaSettings(), timeout_ms=5_000))
    True
    """
    servers = ",".join(kafka.bootstrap_servers)
    return BrokerUnavailable(
        f"no Kafka broker answers at {servers} (waited {timeout_ms / 1000:.0f} s): "
        "check kafka.bootstrap_servers (env STREAM_AL_KAFKA__BOOTSTRAP_SERVERS or "
        "--bootstrap-servers) and that the broker is up")


def announce(kafka: KafkaSettings, timeout_ms: int = BOOTSTRAP_TIMEOUT_MS) -> None:
    """Say on stderr that we are waiting, so a wrong address is not a silent pause."""
    print(f"connecting to Kafka at {','.join(kafka.bootstrap_servers)} "
          f"(up to {timeout_ms / 1000:.0f} s)…", file=sys.stderr, flush=True)
