"""A real Apache Kafka broker on 127.0.0.1 for tests, without Docker.

The broker jars come from Maven Central once into ``${STREAM_AL_CACHE:-~/.cache/stream-al}``;
each named instance is a single-node KRaft broker+controller in its own process group.
Command line: ``python -m consumers.kafka_local start|stop|status [--name N]``;
``start --secure [--principal NAME]… [--floor-acls]`` makes it SASL_SSL (SCRAM-SHA-512)
with ACLs (``consumers.kafka_local.secure``, ``consumers.kafka_local.acls``).
"""

from consumers.kafka_local.broker import LocalKafka, reap_orphans
from consumers.kafka_local.errors import (
    BrokerExited,
    BrokerStartError,
    DownloadError,
    KafkaLocalError,
    ToolMissing,
)
from consumers.kafka_local.jars import KAFKA_VERSION

__all__ = [
    "KAFKA_VERSION",
    "BrokerExited",
    "BrokerStartError",
    "DownloadError",
    "KafkaLocalError",
    "LocalKafka",
    "ToolMissing",
    "reap_orphans",
]
