"""Fixtures of the daemon tests (``test_daemon_*.py``): a ``Harness`` over fresh topics.

The broker is the session's (``kafka_bootstrap``); a module whose test needs a broker of
its own overrides ``harness_bootstrap``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from tests.daemon_support import Harness, make_topics


@pytest.fixture
def harness_bootstrap(kafka_bootstrap: str) -> str:
    """``host:port`` of the broker the test's topics and processes live on."""
    return kafka_bootstrap


@pytest.fixture
def harness(harness_bootstrap: str, unique_topic: Callable[..., str],
            unique_group: Callable[..., str], tmp_path: Path,
            kafka_client: str) -> Iterator[Harness]:
    """Fresh topics, a group of the test's own and ``tmp_path`` as the work dir; every
    process the test starts through it uses ``kafka_client`` and is killed at the end."""
    admin = KafkaAdminClient(bootstrap_servers=harness_bootstrap, client_id="stream-al-tests")
    try:
        topics = make_topics(admin, unique_topic)
    finally:
        admin.close()
    with Harness(harness_bootstrap, topics, unique_group(), tmp_path,
                 kafka_client) as harness:
        yield harness
