"""``stream-al oracle simulate`` as a person runs it, on the real broker: a request it has
no truth for is not answered and not committed past, the message says how to give truth,
a progress line shows while it works, and kafka-python's INFO chatter stays off unless
``--log-level`` asks for it."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from consumers.kafka.sink import KafkaSink
from consumers.oracle.simulate import run_oracle
from consumers.settings import KafkaClient, KafkaSettings, Settings
from stream_al.codec import decode_label, encode
from stream_al.errors import BrokerUnavailable
from stream_al.oracle import SimulatedOracle, truth_from_record
from stream_al.records import OracleLabel
from stream_al.topics import TopicNames
from tests.clients_support import CLIENTS, command_env
from tests.factories import parametric, request

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("kafka_client", CLIENTS)]

STREAM_AL = Path(sys.executable).parent / "stream-al"
GROUP = "stream-al-oracle-simulator"  # the command's own group
HINT = ("give it truth with --truth FILE (CSV record_id,label or JSONL), or produce records "
        "that carry their label (stream-al produce --label-from pass_fail|hard_bin|soft_bin)")


def simulate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STREAM_AL), "oracle", "simulate", "--delay", "0",
                           "--idle-exit", "4", "--progress-every", "0.2", *args],
                          capture_output=True, text=True, env=env, timeout=180, check=False)


@pytest.fixture
def oracle_env(kafka_bootstrap: str, create_topic: Callable[[str, int], str],
               unique_topic: Callable[..., str], kafka_client: str) -> dict[str, str]:
    """One-partition request and label topics with three requests: r-1 and r-3 carry
    their label, r-2 (offset 1) has none."""
    requests, labels = create_topic(unique_topic("requests"), 1), create_topic(
        unique_topic("labels"), 1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for record_id, truth in (("r-1", "pass"), ("r-2", None), ("r-3", "fail")):
        asked = request(record_id, record=parametric(record_id, label=truth))
        producer.send(requests, key=asked.query_id.encode(), value=encode(asked))
    producer.flush()
    producer.close()
    return command_env(kafka_client) | {"STREAM_AL_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
                  "STREAM_AL_TOPICS__REQUESTS": requests, "STREAM_AL_TOPICS__LABELS": labels}


def labels_on(env: dict[str, str]) -> list[str]:
    consumer = KafkaConsumer(env["STREAM_AL_TOPICS__LABELS"], group_id=None,
                             bootstrap_servers=env["STREAM_AL_KAFKA__BOOTSTRAP_SERVERS"],
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        return [decode_label(message.value).query_id for message in consumer]
    finally:
        consumer.close()


def committed(env: dict[str, str]) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=env["STREAM_AL_KAFKA__BOOTSTRAP_SERVERS"])
    try:
        offsets = admin.list_group_offsets(GROUP)[GROUP]
    finally:
        admin.close()
    found = offsets.get(TopicPartition(env["STREAM_AL_TOPICS__REQUESTS"], 0))
    return None if found is None else found.offset


def test_a_request_without_truth_is_held_named_with_the_fix_and_answered_once_truth_comes(
        oracle_env: dict[str, str], tmp_path: Path) -> None:
    first = simulate(oracle_env)
    assert first.returncode == 0, first.stderr
    r1, r2, r3 = (request(r).query_id for r in ("r-1", "r-2", "r-3"))
    assert labels_on(oracle_env) == [r1, r3]
    # The first request without truth says what to do, once; the summary says it again.
    assert first.stderr.count(f"no truth for record r-2 (query {r2}): not answered, and not "
                               "committed past, so it is read again at the next start; "
                               f"{HINT}") == 1
    assert re.search(r"sent 2 labels; 1 queries had no known truth \(not committed past "
                     r"them, so they are read again next time: give it truth", first.stderr)
    progress = re.findall(r"progress: (\d+) requests read, (\d+) labels sent, (\d+) waiting "
                          r"for their delay, (\d+) without truth", first.stderr)
    assert progress and progress[-1] == ("3", "2", "0", "1"), first.stderr
    assert committed(oracle_env) == 1  # r-2's offset: not past it

    truth = tmp_path / "truth.csv"
    truth.write_text("record_id,label\nr-2,fail\n", encoding="utf-8")
    second = simulate(oracle_env, "--truth", str(truth))
    assert second.returncode == 0, second.stderr
    assert "no truth" not in second.stderr.replace("0 queries had no known truth", "")
    # r-2 is answered; r-3 after it is answered again (the daemon dead-letters the second
    # as a duplicate): at least once, never lost.
    assert labels_on(oracle_env) == [r1, r3, r2, r3]
    assert committed(oracle_env) == 3


def test_kafka_chatter_is_off_by_default_and_log_level_turns_it_on_or_everything_down(
        oracle_env: dict[str, str]) -> None:
    quiet = simulate(oracle_env)
    assert quiet.returncode == 0, quiet.stderr
    ours = re.compile(r" INFO (progress: |sent )")
    chatter = [line for line in quiet.stderr.splitlines()
               if re.search(r" (INFO|DEBUG) ", line) and not ours.search(line)]
    assert chatter == []
    assert "INFO sent 2 labels" in quiet.stderr
    # Nor the client's warnings and errors, on a healthy broker (the format names no
    # logger, so ours are known by their words): the only one is r-2's.
    alarms = [line for line in quiet.stderr.splitlines()
              if re.search(r" (WARNING|ERROR|CRITICAL) ", line)
              and " WARNING no truth for record r-2 " not in line]
    assert alarms == [], quiet.stderr

    loud = simulate(oracle_env, "--log-level", "debug")
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert re.search(r"DEBUG kafka\.", loud.stderr)

    hushed = simulate(oracle_env, "--log-level", "WARNING")
    assert hushed.returncode == 0, hushed.stderr
    assert "sent 2 labels" not in hushed.stderr and "progress:" not in hushed.stderr
    assert "no truth for record r-2" in hushed.stderr  # warnings still show


def test_an_unknown_log_level_is_one_message_and_exit_2(oracle_env: dict[str, str]) -> None:
    refused = simulate(oracle_env, "--log-level", "loud")
    assert refused.returncode == 2
    said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", refused.stderr).split())  # the box typer draws
    assert ("Invalid value for '--log-level': Value error, 'loud' is not one of 'debug', "
            "'info', 'warning', 'error'") in said
    assert "Traceback" not in refused.stderr


def test_a_producer_that_fails_for_good_is_replaced_and_its_labels_sent_again(
        oracle_env: dict[str, str], kafka_client: KafkaClient, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """librdkafka's idempotent producer turns fatal when a restarted broker lost what it
    had acknowledged; every later flush raises. The simulator must not stop answering:
    it makes a new producer and sends that turn's labels again."""
    real_connect = KafkaSink.connect
    made: list[KafkaSink[OracleLabel]] = []

    def connect(kafka: KafkaSettings, *args: Any, **kwargs: Any) -> KafkaSink[OracleLabel]:
        sink: KafkaSink[OracleLabel] = real_connect(kafka, *args, **kwargs)
        if not made:  # the first producer fails at its first flush, and for good
            def dead(timeout_s: float | None = None) -> None:
                raise BrokerUnavailable("could not deliver produced messages: fatal")
            monkeypatch.setattr(sink, "flush", dead)
        made.append(sink)
        return sink

    monkeypatch.setattr(KafkaSink, "connect", connect)
    settings = Settings(kafka=KafkaSettings(
        bootstrap_servers=oracle_env["STREAM_AL_KAFKA__BOOTSTRAP_SERVERS"],
        client=kafka_client),
        topics=TopicNames(requests=oracle_env["STREAM_AL_TOPICS__REQUESTS"],
                          labels=oracle_env["STREAM_AL_TOPICS__LABELS"]))
    caplog.set_level(logging.WARNING, logger="stream_al.oracle")
    code = run_oracle(settings, SimulatedOracle(truth_from_record), threading.Event(),
                      group=f"{settings.topics.requests}-oracle", idle_exit_s=4.0)

    assert code == 0
    assert len(made) == 2
    assert "the label producer failed" in caplog.text
    r1, r3 = (request(r).query_id for r in ("r-1", "r-3"))
    # Sent on the first producer, maybe delivered, then sent again: at least once each.
    assert set(labels_on(oracle_env)) == {r1, r3}
