"""The Kafka clients the suite runs against (``kafka.client``).

A test parametrized with ``@pytest.mark.parametrize("kafka_client", CLIENTS)`` runs with
each; every other test uses the ``kafka_client`` fixture's: the product's default
(confluent-kafka) unless ``STREAM_AL_TEST_KAFKA_CLIENT=kafka-python`` asks for the whole
suite on kafka-python.
"""

from __future__ import annotations

import os

CLIENT_ENV = "STREAM_AL_TEST_KAFKA_CLIENT"
CLIENTS = ("kafka-python", "confluent")


def command_env(kafka_client: str) -> dict[str, str]:
    """The environment of a ``stream-al`` process a test starts, before it names the
    broker and topics: this one's without any ``STREAM_AL_*`` setting (a developer's own
    must not leak in), and the test's Kafka client."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_AL_")}
    return env | {"STREAM_AL_KAFKA__CLIENT": kafka_client}
