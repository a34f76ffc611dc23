"""``stream-al tail`` on the real broker: the last N, from the start, following, JSON lines,
the model filter, untrusted bytes shown safely, and no consumer group joined."""

from __future__ import annotations

import base64
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from stream_al.codec import encode
from stream_al.records import OracleLabel, Prediction
from tests.clients_support import CLIENTS, command_env
from tests.factories import T0, request

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("kafka_client", CLIENTS)]

STREAM_AL = Path(sys.executable).parent / "stream-al"
HOSTILE_ID = "[bold]x\x1b[2J\u202e"  # rich markup, a clear-screen escape, a bidi override
NOT_JSON = b"\xff\xfe not json"


def tail(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STREAM_AL), "tail", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def prediction(number: int, model_key: str = "PMIC-A7", record_id: str | None = None
               ) -> bytes:
    return encode(Prediction(
        record_id=record_id or f"r-{number:03d}", model_key=model_key,
        predicted="pass" if number % 2 else None,
        proba={"pass": 0.75, "fail": 0.25} if number % 2 else {}, uncertainty=0.5,
        queried=False, query_id=None, model_version=number, ts=T0))


@pytest.fixture
def floor(kafka_bootstrap: str, create_topic: Callable[[str, int], str],
          unique_topic: Callable[..., str], kafka_client: str
          ) -> Iterator[tuple[dict[str, str], KafkaProducer]]:
    """Topics of the test's own (requests on 3 partitions) and the environment naming them."""
    env = command_env(kafka_client)
    env["STREAM_AL_KAFKA__BOOTSTRAP_SERVERS"] = kafka_bootstrap
    for family, partitions in (("predictions", 1), ("requests", 3), ("labels", 1),
                               ("dlq", 1)):
        env[f"STREAM_AL_TOPICS__{family.upper()}"] = create_topic(unique_topic(family),
                                                                  partitions)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    yield env, producer
    producer.close()


def send(producer: KafkaProducer, topic: str, values: list[bytes]) -> None:
    for value in values:
        producer.send(topic, value=value).get(timeout=30)  # one by one: broker order


def test_last_from_start_and_json_lines_of_predictions(
        floor: tuple[dict[str, str], KafkaProducer]) -> None:
    env, producer = floor
    topic = env["STREAM_AL_TOPICS__PREDICTIONS"]
    send(producer, topic, [prediction(n) for n in range(1, 31)])

    last = tail(env, "predictions", "--last", "5")
    assert last.returncode == 0, last.stderr
    lines = last.stdout.splitlines()
    assert [line.split()[4] for line in lines] == [f"r-{n:03d}" for n in range(26, 31)]
    assert "PMIC-A7 r-029 → pass 0.75  u=0.500" in lines[3]
    assert "PMIC-A7 r-030 → no prediction yet" in lines[4]  # not two bars at 0

    everything = tail(env, "predictions", "--from-start", "--json")
    assert everything.returncode == 0, everything.stderr
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    assert [row["offset"] for row in rows] == list(range(30))
    assert rows[0]["topic"] == topic and rows[0]["value"]["record_id"] == "r-001"
    assert rows[0]["value"]["model_version"] == 1
    assert tail(env, "predictions").stdout.count("\n") == 20  # the default: the last 20


def test_untrusted_bytes_are_shown_not_interpreted(
        floor: tuple[dict[str, str], KafkaProducer]) -> None:
    env, producer = floor
    send(producer, env["STREAM_AL_TOPICS__PREDICTIONS"],
         [prediction(1, record_id=HOSTILE_ID), NOT_JSON])
    pretty = tail(env, "predictions")
    assert pretty.returncode == 0, pretty.stderr
    assert "\x1b" not in pretty.stdout and "\u202e" not in pretty.stdout
    first, second = pretty.stdout.splitlines()
    assert "[bold]x␛[2J\ufffd" in first  # markup printed as it is, controls pictured
    assert "unreadable message (not JSON:" in second
    rows = [json.loads(line) for line in tail(env, "predictions", "--json").stdout.splitlines()]
    assert rows[0]["value"]["record_id"] == HOSTILE_ID
    assert rows[1]["value"] is None and rows[1]["problem"].startswith("not JSON")
    assert base64.b64decode(rows[1]["value_b64"]) == NOT_JSON


def test_the_model_filter_finds_the_last_n_of_one_model_over_every_partition(
        floor: tuple[dict[str, str], KafkaProducer]) -> None:
    env, producer = floor
    topic = env["STREAM_AL_TOPICS__REQUESTS"]
    # 1,200 requests of model B around 7 of model A: the last 5 of A sit behind more
    # than one chunk of B on each partition.
    values = [encode(request(f"a-{n}", "A")) for n in range(7)]
    values += [encode(request(f"b-{n}", "B")) for n in range(1200)]
    first_ms = int(time.time() * 1000) - len(values)
    for number, value in enumerate(values):  # timestamps 1 ms apart: the order is known
        producer.send(topic, value=value, partition=number % 3, timestamp_ms=first_ms + number)
    producer.flush()
    shown = tail(env, "requests", "--model-key", "A", "--last", "5", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert sorted(row["value"]["record_id"] for row in rows) == [f"a-{n}" for n in range(2, 7)]
    assert {row["partition"] for row in rows} == {0, 1, 2}
    readable = tail(env, "requests", "--model-key", "A", "--last", "1").stdout
    assert "A a-6 uncertainty  u=0.800 θ=0.500  predicted pass  expires" in readable


def test_follow_prints_new_labels_until_interrupted_and_joins_no_group(
        floor: tuple[dict[str, str], KafkaProducer], kafka_admin: KafkaAdminClient) -> None:
    env, producer = floor
    topic = env["STREAM_AL_TOPICS__LABELS"]
    send(producer, topic, [encode(OracleLabel(query_id="q-old", label="pass", labeler=None,
                                              labeled_at=T0))])
    follower = subprocess.Popen([str(STREAM_AL), "tail", "labels", "--follow", "--last", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    lines: queue.Queue[str] = queue.Queue()

    def read_lines() -> None:
        for line in follower.stdout or []:
            lines.put(line)

    reader = threading.Thread(target=read_lines, daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=60)  # the last existing label: the follower is reading
        assert "q-old = pass  by nobody named" in first
        send(producer, topic, [encode(OracleLabel(query_id=f"q-{n}", label="fail",
                                                  labeler="eng-1", labeled_at=T0))
                               for n in range(3)])
        started = time.monotonic()
        new = [lines.get(timeout=60) for _ in range(3)]
        print(f"three new labels shown {time.monotonic() - started:.2f} s after sending")
        assert [line.split()[3] for line in new] == ["q-0", "q-1", "q-2"]
        groups = [group["group_id"] for group in kafka_admin.list_groups()]
        for group in groups:
            offsets = kafka_admin.list_group_offsets(group).get(group, {})
            assert all(tp.topic != topic for tp in offsets), group
    finally:
        follower.send_signal(signal.SIGINT)
        code = follower.wait(timeout=30)
        reader.join(timeout=30)  # the pipe is at its end once the process is gone
        said = follower.stderr.read() if follower.stderr else ""
        for pipe in (follower.stdout, follower.stderr):
            if pipe is not None:
                pipe.close()
    assert code == 0, said
    assert "Traceback" not in said


def test_dead_letters_and_refusals(floor: tuple[dict[str, str], KafkaProducer]) -> None:
    env, producer = floor
    letter = {"schema_version": 1, "source_topic": "ate.parametric", "partition": 3,
              "offset": 1043, "error": "ts: required field is missing",
              "payload_b64": base64.b64encode(b'{"x": 1}').decode(),
              "ts": "2026-11-24T10:15:03Z"}
    send(producer, env["STREAM_AL_TOPICS__DLQ"], [json.dumps(letter).encode()])
    shown = tail(env, "dlq")
    assert shown.returncode == 0, shown.stderr
    assert "ate.parametric[3]@1043: ts: required field is missing  payload 8 bytes" in shown.stdout

    wrong_filter = tail(env, "labels", "--model-key", "A")
    assert wrong_filter.returncode == 2
    assert wrong_filter.stderr.strip().endswith(
        "stream-al tail: --model-key filters predictions and requests; labels do not name "
        "their model")
    missing = tail(env | {"STREAM_AL_TOPICS__DLQ": "no-such-topic-here"}, "dlq")
    assert missing.returncode == 3
    assert "topic no-such-topic-here has no partitions yet (does it exist? run `stream-al " \
           "topics create`)" in missing.stderr
    assert "Traceback" not in missing.stderr + wrong_filter.stderr


def test_no_broker_is_one_message_and_exit_3(
        floor: tuple[dict[str, str], KafkaProducer]) -> None:
    env, _ = floor
    nobody = tail(env, "predictions", "--bootstrap-servers", "127.0.0.1:1")
    assert nobody.returncode == 3
    assert "connecting to Kafka at 127.0.0.1:1" in nobody.stderr
    assert "stream-al tail: no Kafka broker answers at 127.0.0.1:1" in nobody.stderr
    assert "Traceback" not in nobody.stderr
