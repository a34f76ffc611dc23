"""The gateway's two clients get the same settings, each in its own words, and classify
errors by the daemon's rule: retriable is an outage, a refusal is that message's failure.
No broker: these are the pure mappings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import confluent_kafka as ck
import pytest
from kafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from pydantic import ValidationError

from consumers.kafka import confluent, kafka_python
from consumers.kafka.clients import LINGER_MS, MAX_MESSAGE_BYTES
from consumers.kafka.gateway import ClientError, TopicPartition
from consumers.settings import KafkaSettings, Settings

SECURED: dict[str, Any] = {
    "bootstrap_servers": ["k1:9093", "k2:9093"], "client_id": "floor-7",
    "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "stream-al", "sasl_plain_password": "s3cret",
    "ssl_cafile": Path("/etc/ca.pem"), "ssl_certfile": Path("/etc/me.pem"),
    "ssl_keyfile": Path("/etc/me.key"), "ssl_password": "keypass", "request_timeout_ms": 20_000,
}


def test_the_default_client_is_confluent_and_the_env_switches_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert KafkaSettings().client == "confluent"
    monkeypatch.setenv("STREAM_AL_KAFKA__CLIENT", "kafka-python")
    assert Settings().kafka.client == "kafka-python"
    with pytest.raises(ValidationError, match="kafka-python"):
        KafkaSettings.model_validate({"client": "java"})


def test_security_settings_reach_librdkafka_under_its_names() -> None:
    config = confluent.common_config(KafkaSettings(**SECURED))
    assert config == {
        "bootstrap.servers": "k1:9093,k2:9093", "client.id": "floor-7",
        "security.protocol": "sasl_ssl", "socket.timeout.ms": 20_000,
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "stream-al",
        "sasl.password": "s3cret", "ssl.ca.location": "/etc/ca.pem",
        "ssl.certificate.location": "/etc/me.pem", "ssl.key.location": "/etc/me.key",
        "ssl.key.password": "keypass",
    }
    plain = confluent.common_config(KafkaSettings())
    assert not any(key.startswith(("sasl.", "ssl.")) for key in plain)


def test_the_kafka_python_options_are_the_ones_the_project_always_used() -> None:
    options = KafkaSettings(**SECURED).client_options()
    assert options["sasl_plain_password"] == "s3cret" and options["ssl_cafile"] == "/etc/ca.pem"
    assert "client" not in options, "the client choice is ours, not a kafka-python option"


def test_both_producers_are_acks_all_idempotent_with_the_same_limits() -> None:
    config = confluent.producer_config(KafkaSettings(**SECURED), reconnect_backoff_max_ms=2000)
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    assert config["linger.ms"] == LINGER_MS and config["compression.type"] == "none"
    assert config["message.max.bytes"] == MAX_MESSAGE_BYTES
    assert config["message.timeout.ms"] == 120_000 and config["reconnect.backoff.max.ms"] == 2000
    assert config["request.timeout.ms"] == 20_000 and config["sasl.username"] == "stream-al"
    # librdkafka accepts every property (the files must exist: tried without TLS here).
    ck.Producer(confluent.producer_config(KafkaSettings()))


def test_consumers_never_commit_on_their_own_and_start_at_the_earliest() -> None:
    group = confluent.consumer_config(KafkaSettings(), "g", session_timeout_ms=7_000)
    assert group["group.id"] == "g" and group["session.timeout.ms"] == 7_000
    assert group["enable.auto.commit"] is False and group["enable.auto.offset.store"] is False
    assert group["auto.offset.reset"] == "earliest"
    assigned = confluent.consumer_config(KafkaSettings(client_id="desk"), None)
    assert assigned["group.id"] == "desk.assigned" and assigned["session.timeout.ms"] == 10_000
    ck.Consumer(group).close()


def test_the_fetch_wait_reaches_every_consumer_of_both_clients(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert KafkaSettings().fetch_max_wait_ms == 500  # both clients' own default
    quick = KafkaSettings(fetch_max_wait_ms=50)
    for group in ("g", None):
        assert confluent.consumer_config(quick, group)["fetch.wait.max.ms"] == 50
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(kafka_python, "KafkaConsumer", lambda **options: made.append(options))
    monkeypatch.setattr(kafka_python, "finish_started_joins", lambda consumer: None)
    kafka_python.native_consumer(quick, "g")
    kafka_python.native_consumer(quick, None, fetch_max_wait_ms=10)  # a caller's own wins
    assert [options["fetch_max_wait_ms"] for options in made] == [50, 10]
    with pytest.raises(ValidationError, match="fetch_max_wait_ms"):
        KafkaSettings.model_validate({"fetch_max_wait_ms": 0})


@pytest.mark.parametrize(("code", "retriable"), [
    (ck.KafkaError.MSG_SIZE_TOO_LARGE, False),
    (ck.KafkaError.TOPIC_AUTHORIZATION_FAILED, False),
    (ck.KafkaError.INVALID_RECORD, False),
    (ck.KafkaError._MSG_TIMED_OUT, True),
    (ck.KafkaError._TRANSPORT, True),
    (ck.KafkaError._ALL_BROKERS_DOWN, True),
    (ck.KafkaError.NOT_LEADER_FOR_PARTITION, True),
    (ck.KafkaError.UNKNOWN_TOPIC_OR_PART, True),
    (ck.KafkaError.REQUEST_TIMED_OUT, True),
])
def test_confluent_errors_are_outages_unless_the_broker_refused_for_good(
        code: int, retriable: bool) -> None:
    error = confluent.client_error(ck.KafkaException(ck.KafkaError(code)))
    assert error.retriable is retriable
    assert ck.KafkaError(code).name() in repr(error)


def test_a_fatal_confluent_error_is_an_outage_the_daemon_reconnects_from() -> None:
    error = confluent.client_error(ck.KafkaError(ck.KafkaError._FENCED, fatal=True))
    assert error.fatal and error.retriable


@pytest.mark.parametrize("group", [None, "stream-al"])
def test_only_a_consumer_in_a_group_stops_on_the_groups_refusal(group: str | None) -> None:
    # librdkafka looks up a coordinator even for an assigned-only consumer's made-up group;
    # with the README's ACLs the broker refuses it, and reading must go on regardless.
    # The rule reads nothing but the consumer's group, so a stand-in needs no broker.
    consumer = SimpleNamespace(group=group)
    consume_error = confluent.ConfluentConsumer._consume_error  # noqa: SLF001
    refused = ck.KafkaError(ck.KafkaError.GROUP_AUTHORIZATION_FAILED)
    if group is None:
        consume_error(consumer, refused)  # type: ignore[arg-type]
    else:
        with pytest.raises(ClientError) as raised:
            consume_error(consumer, refused)  # type: ignore[arg-type]
        assert not raised.value.retriable
    with pytest.raises(ClientError):  # a topic's refusal stops either one
        consume_error(consumer,  # type: ignore[arg-type]
                      ck.KafkaError(ck.KafkaError.TOPIC_AUTHORIZATION_FAILED))


class _ReportsLateAfterPurge:
    """librdkafka as it behaves with the broker gone: the messages held by a broker's
    thread are purged by that thread, so their reports come only to a flush that waits."""

    def __init__(self, pending: int) -> None:
        self.pending, self.purged = pending, False

    def purge(self) -> None:
        self.purged = True

    def flush(self, timeout_s: float) -> int:
        if self.purged and timeout_s > 0:
            self.pending = 0
        return self.pending


def test_closing_waits_for_the_reports_of_purged_messages() -> None:
    # Until its report is served a message's callback (and through it the sink and the
    # producer) stays referenced by the native producer, out of the collector's reach.
    producer = object.__new__(confluent.ConfluentProducer)
    producer.native = _ReportsLateAfterPurge(pending=20)
    producer.close(timeout_s=0.1)
    assert producer.native.purged and producer.native.pending == 0


@pytest.mark.parametrize(("error", "retriable"), [
    (MessageSizeTooLargeError(), False),
    (TopicAuthorizationFailedError(), False),
    (KafkaTimeoutError(), True),
    (NotLeaderForPartitionError(), True),
    (KafkaConnectionError(), True),
    (OSError("reset"), True),
])
def test_kafka_python_errors_keep_their_own_retriable_flag(
        error: BaseException, retriable: bool) -> None:
    mapped = kafka_python.client_error(error)
    assert mapped.retriable is retriable and repr(mapped) == repr(error)


def test_partitions_are_plain_pairs_either_client_can_key_by() -> None:
    from kafka import TopicPartition as KafkaPythonPartition

    ours = TopicPartition("t", 1)
    assert ours == ("t", 1) == KafkaPythonPartition("t", 1)
    assert {ours: 5}[KafkaPythonPartition("t", 1)] == 5
