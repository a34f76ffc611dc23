"""The desk in headless Chromium while its broker goes away and comes back (a broker of
this test's own, on the same ports and data): the page says "Kafka unreachable: answers
cannot be sent" and keeps the card and queue it has (not "Nothing to label"), an answer
is refused at once with that message, and once the broker is back the banner clears and
the answer lands (and a click on a queue row opens that card). Screenshots of both go
to ``tests/artifacts/desk/``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from consumers.kafka_local import LocalKafka
from tests.clients_support import CLIENTS
from tests.daemon_support import restartable_broker
from tests.desk_support import floor_request, produce, read_labels, stream_al_env
from tests.integration.test_desk_browser import (
    EMPTY,
    PASSWORDS,
    STREAM_AL,
    browser,
    card_of,
    log_in,
    running_desk,
    shoot,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.parametrize("kafka_client", CLIENTS)]
pytest.importorskip("playwright.sync_api", reason="pip install playwright")
__all__ = ["browser"]  # the fixture, shared with the other browser tests

BANNER = "#banner:text('Kafka unreachable: answers cannot be sent')"
_PREFIX = "pytest-desk-outage-"  # + the pid of the session, so an orphan can be reaped


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own on fixed ports, restartable on the same data."""
    with restartable_broker(_PREFIX, tmp_path / "kafka-data") as kafka:
        yield kafka


def desk_env(broker: LocalKafka, tmp_path: Path, kafka_client: str) -> dict[str, str]:
    topics = ("desk-requests", "desk-labels", "desk-claims")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1) for name in topics[:2]])
    finally:
        admin.close()
    env = stream_al_env(broker.bootstrap, *topics, kafka_client) | {
        "STREAM_AL_STATE_DIR": str(tmp_path)}
    subprocess.run([STREAM_AL, "desk", "users", "add", "eng-ann", "--password-stdin"],
                   input=PASSWORDS["eng-ann"] + "\n", env=env, check=True,
                   capture_output=True, text=True, timeout=60)
    return env


def test_a_broker_outage_shows_a_banner_keeps_the_card_and_clears_when_it_is_back(
        broker: LocalKafka, tmp_path: Path, browser: Any, kafka_client: str) -> None:
    env = desk_env(broker, tmp_path, kafka_client)
    first, second, third = (floor_request(300 + n, uncertainty=0.9 - 0.1 * n) for n in range(3))
    produce(broker.bootstrap, "desk-requests", first, second, third)
    with running_desk(env, tmp_path / "desk.log") as url:
        ann = log_in(browser, url, "eng-ann")
        ann.wait_for_selector(card_of(ann, first.query_id))
        assert ann.is_hidden("#banner")

        broker.stop()
        ann.wait_for_selector(BANNER, timeout=60_000)
        assert ann.query_selector(card_of(ann, first.query_id)) is not None  # still there
        assert len(ann.query_selector_all("#queue li")) == 2  # and so is the queue
        assert ann.query_selector(EMPTY) is None
        ann.keyboard.press("1")
        ann.wait_for_selector("#toast.error:text('Kafka unreachable: answers cannot be sent')")
        assert ann.query_selector(card_of(ann, first.query_id)) is not None
        shoot(ann, "11-kafka-unreachable-banner")

        broker.start()
        ann.wait_for_selector("#banner", state="hidden", timeout=120_000)
        shoot(ann, "12-kafka-back-banner-cleared")
        ann.wait_for_selector("#toast", state="hidden")  # the refusal's message has gone
        ann.keyboard.press("1")
        ann.wait_for_selector("#toast:not([hidden])", timeout=30_000)
        assert ann.text_content("#toast") == f"{first.query_id}: labelled fail"
        ann.wait_for_selector(card_of(ann, second.query_id))
        ann.click(f"#queue li[data-query-id='{third.query_id}']")  # a queue row opens its card
        ann.wait_for_selector(card_of(ann, third.query_id))
        assert ann.evaluate("window.__empties") == 0
    labels = read_labels(broker.bootstrap, "desk-labels", 2, timeout_s=10)
    assert [(x.query_id, x.label, x.labeler) for x in labels] == [
        (first.query_id, "fail", "eng-ann")]
