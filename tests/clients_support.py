"""The Kafka clients the suite runs against (``kafka.client``).

A test parametrized with ``@pytest.mark.parametrize("kafka_client", CLIENTS)`` runs with
each; every other test uses the ``kafka_client`` fixture's, kafka-python unless
``STREAM_AL_TEST_KAFKA_CLIENT=confluent`` asks for the whole suite on confluent-kafka.
"""

from __future__ import annotations

CLIENT_ENV = "STREAM_AL_TEST_KAFKA_CLIENT"
CLIENTS = ("kafka-python", "confluent")
