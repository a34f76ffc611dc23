"""The secured-broker tests' helpers: a settings file per principal, reading topics as
admin, and trying to write as someone who may not.

Every client here logs in over SASL_SSL (SCRAM-SHA-512) with the passwords the local
broker made (``LocalKafka.client_options(principal)``); nothing reaches the broker as
anyone but a named principal.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import secrets
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from consumers.kafka_local import LocalKafka
from consumers.kafka_local.acls import FLOOR_PRINCIPALS, Grant
from consumers.kafka_local.secure import write_private
from consumers.settings import DEFAULT_CLIENT
from stream_al.topics import TopicNames
from tests.daemon_support import HANG_GUARD_S, Proc, wait_until

#: The floor's roles plus one that may only read requests.
PRINCIPALS = (*FLOOR_PRINCIPALS, "intruder")
#: The daemon's consumer group, granted to the daemon alone.
DAEMON_GROUP = "stream-al-secured"
#: Signs the daemon's requests; the oracle and the desk check it.
REQUEST_KEY = secrets.token_hex(32)
_DESK_URL = re.compile(r"stream-al desk: (http://\S+/) ")


def intruder_grants(topics: TopicNames) -> list[Grant]:
    """The intruder may read the questions; it must not be able to answer them."""
    return [Grant("intruder", "topic", topics.requests, "READ")]


def principal_config(kafka: LocalKafka, principal: str, topics: TopicNames, workdir: Path,
                     client: str = DEFAULT_CLIENT, **sections: Any) -> Path:
    """A YAML settings file (0600: it holds a password) logging ``principal`` in with
    ``kafka.client`` ``client``; any ``sections`` are added as they are (``http``,
    ``desk``, ``checkpoint``…)."""
    options = kafka.client_options(principal)
    settings = {
        "kafka": {**options, "bootstrap_servers": [options["bootstrap_servers"]],
                  "client_id": f"secured-{principal}", "group_id": DAEMON_GROUP,
                  "client": client},
        "topics": topics.model_dump(mode="json"),
        "security": {"request_key": REQUEST_KEY},
        "state_dir": str(workdir / f"{principal}-state"),
        **sections,
    }
    path = workdir / f"{principal}.yaml"
    write_private(path, yaml.safe_dump(settings, sort_keys=False))
    return path


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(topic)
    assert found, f"{topic}: no partitions in the metadata (absent, or not ours to see)"
    return [TopicPartition(topic, partition) for partition in sorted(found)]


def read_all(options: Mapping[str, Any], topic: str) -> list[ConsumerRecord]:
    """Every message now on ``topic``, read without a group as whoever ``options`` log in."""
    consumer = KafkaConsumer(**options, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        partitions = _partitions(consumer, topic)
        ends = consumer.end_offsets(partitions)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        seen: list[ConsumerRecord] = []
        deadline = time.monotonic() + HANG_GUARD_S
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for records in consumer.poll(timeout_ms=200).values():
                seen += records
        return seen
    finally:
        consumer.close()


def count(options: Mapping[str, Any], topic: str) -> int:
    consumer = KafkaConsumer(**options, enable_auto_commit=False)
    try:
        return sum(consumer.end_offsets(_partitions(consumer, topic)).values())
    finally:
        consumer.close()


def send_one(options: Mapping[str, Any], topic: str, value: bytes) -> None:
    """Send ``value`` as the project's producers do (acks=all, idempotent); raises the
    broker's refusal."""
    producer = KafkaProducer(**options, acks="all", enable_idempotence=True,
                             max_block_ms=20_000)
    try:
        producer.send(topic, value=value).get(timeout=30)
    finally:
        producer.close(timeout=5)


def desk_url(desk: Proc) -> str:
    """The address ``stream-al desk`` printed once it listened."""
    found: list[str] = []

    def printed() -> bool:
        assert desk.alive(), f"the desk exited early:\n{desk.output()[-3000:]}"
        found[:] = _DESK_URL.findall(desk.output())
        return bool(found)

    wait_until(printed, f"the desk to print its address (log {desk.log})")
    return found[0]


def desk_status(url: str) -> dict[str, Any]:
    """The ``status`` of ``/api/state`` as the desk's own page gets it: open the page (the
    fixed labeler gets a session cookie), then ask with that cookie."""
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(url, timeout=10) as page:
        assert page.status == 200
    with browser.open(f"{url}api/state", timeout=10) as answer:
        status: dict[str, Any] = json.loads(answer.read())["status"]
    return status


def exit_code(proc: Proc) -> int:
    """Wait (within the hang guard) for ``proc`` to exit by itself."""
    return proc.popen.wait(timeout=HANG_GUARD_S)
