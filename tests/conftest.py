"""Session-wide fixtures: one real Kafka broker per test session, unique names per test.

``STREAM_AL_TEST_BOOTSTRAP=host:port`` reuses a running broker (e.g. from
``scripts/kafka-local start``); otherwise the session starts its own and stops it at the
end, on failure and on Ctrl-C alike. Integration tests carry ``@pytest.mark.integration``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from consumers.settings import DEFAULT_CLIENT
from tests.clients_support import CLIENT_ENV, CLIENTS

BOOTSTRAP_ENV = "STREAM_AL_TEST_BOOTSTRAP"
_SESSION_PREFIX = "pytest-"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real Apache Kafka broker for the whole session."""
    given = os.environ.get(BOOTSTRAP_ENV)
    if given:
        yield given
        return
    from consumers.kafka_local import LocalKafka, reap_orphans

    reap_orphans(_SESSION_PREFIX)  # brokers left by sessions that were SIGKILLed
    workdir = tmp_path_factory.mktemp("kafka")
    kafka = LocalKafka(
        f"{_SESSION_PREFIX}{os.getpid()}", data_dir=workdir / "data", die_with_parent=True
    )
    atexit.register(kafka.discard)  # second guard should the teardown never run
    try:
        yield kafka.start()
    finally:
        kafka.stop()
        if kafka.log_file.is_file():  # kept with pytest's tmp dirs for a post-mortem
            shutil.copy2(kafka.log_file, workdir / "broker.log")
        kafka.discard()
        atexit.unregister(kafka.discard)


@pytest.fixture
def kafka_client() -> str:
    """The ``kafka.client`` of this test (``@pytest.mark.parametrize("kafka_client",
    CLIENTS)`` runs a test with each)."""
    client = os.environ.get(CLIENT_ENV, DEFAULT_CLIENT)
    assert client in CLIENTS, f"{CLIENT_ENV}={client}: use one of {', '.join(CLIENTS)}"
    return client


def _name_factory(request: pytest.FixtureRequest, kind: str) -> Callable[..., str]:
    # Kafka allows [a-zA-Z0-9._-]; '.' and '_' together draw a metric-collision warning.
    test = re.sub(r"[^a-zA-Z0-9-]+", "-", request.node.name).strip("-")[:120]

    def make(label: str = "") -> str:
        parts = [kind, test, label, uuid.uuid4().hex[:10]]
        return "-".join(part for part in parts if part)

    return make


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory: ``unique_topic("labels")`` → a topic name no other test or call gets."""
    return _name_factory(request, "topic")


@pytest.fixture
def unique_group(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory: ``unique_group()`` → a consumer group id no other test or call gets."""
    return _name_factory(request, "group")


@pytest.fixture
def kafka_admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    """An admin client of the test's own: no test can leave another a broken one."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="stream-al-tests")
    yield admin
    admin.close()


@pytest.fixture
def create_topic(kafka_admin: KafkaAdminClient) -> Callable[[str, int], str]:
    """``create_topic(name, partitions)``: create it, wait until every partition has a leader."""

    def create(name: str, partitions: int = 1) -> str:
        kafka_admin.create_topics([NewTopic(name, partitions, 1)])
        kafka_admin.wait_for_topics([name], timeout_ms=30_000)
        return name

    return create
