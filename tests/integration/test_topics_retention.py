"""``stream-al topics create`` keeps each topic as long as the ``retention.*`` settings say,
on the real broker: at creation, and on an existing topic only when asked."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from tests.clients_support import CLIENTS, command_env

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("kafka_client", CLIENTS)]

STREAM_AL = Path(sys.executable).parent / "stream-al"
FAMILIES = ("parametric", "transactions", "predictions", "requests", "labels", "dlq", "claims")


def stream_al(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STREAM_AL), *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def retention_ms(admin: KafkaAdminClient, topic: str) -> str:
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs=["retention.ms"])],
        config_filter="all")
    value: str = described["topic"][topic]["retention.ms"]["value"]
    return value


@pytest.fixture
def floor_env(kafka_bootstrap: str, unique_topic: Callable[..., str], kafka_client: str
              ) -> dict[str, str]:
    env = command_env(kafka_client)
    env["STREAM_AL_KAFKA__BOOTSTRAP_SERVERS"] = kafka_bootstrap
    for family in FAMILIES:
        env[f"STREAM_AL_TOPICS__{family.upper()}"] = unique_topic(family)
    return env


def test_topics_create_applies_retention_and_changes_an_existing_topic_only_when_asked(
        floor_env: dict[str, str], kafka_admin: KafkaAdminClient) -> None:
    labels = floor_env["STREAM_AL_TOPICS__LABELS"]
    requests = floor_env["STREAM_AL_TOPICS__REQUESTS"]
    created = stream_al(floor_env | {"STREAM_AL_RETENTION__LABELS_HOURS": "48",
                                     "STREAM_AL_RETENTION__REQUESTS_HOURS": "-1"},
                        "topics", "create")
    assert created.returncode == 0, created.stderr
    assert f"{labels}: created (1 partitions, kept 48 h)" in created.stdout
    assert retention_ms(kafka_admin, labels) == str(48 * 3_600_000)
    assert retention_ms(kafka_admin, requests) == "-1"
    assert retention_ms(kafka_admin, floor_env["STREAM_AL_TOPICS__PARAMETRIC"]) == str(
        168 * 3_600_000)  # the default of the inputs

    # Defaults now (labels 168 h): an existing topic is left alone, and told about.
    again = stream_al(floor_env, "topics", "create")
    assert again.returncode == 0, again.stderr
    assert (f"{labels}: exists, kept 48 h while the settings say 168 h: --apply-retention "
            "changes it") in again.stdout
    assert retention_ms(kafka_admin, labels) == str(48 * 3_600_000)

    applied = stream_al(floor_env, "topics", "create", "--apply-retention")
    assert applied.returncode == 0, applied.stderr
    assert f"{labels}: exists, retention changed from 48 h to 168 h" in applied.stdout
    assert f"{requests}: exists, retention changed from forever to 192 h" in applied.stdout
    assert retention_ms(kafka_admin, labels) == str(168 * 3_600_000)
    assert retention_ms(kafka_admin, requests) == str(192 * 3_600_000)
    # Nothing else of the topic was reset: the broker still stamps labels itself.
    described = kafka_admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, labels, configs=["message.timestamp.type"])],
        config_filter="all")
    assert described["topic"][labels]["message.timestamp.type"]["value"] == "LogAppendTime"
    settled = stream_al(floor_env, "topics", "create")
    assert [line for line in settled.stdout.splitlines() if not line.endswith(": exists")] == []


def test_a_retention_shorter_than_the_query_lifetime_is_refused_before_kafka_is_asked(
        floor_env: dict[str, str], kafka_admin: KafkaAdminClient) -> None:
    refused = stream_al(floor_env | {"STREAM_AL_RETENTION__LABELS_HOURS": "12"},
                        "topics", "create")
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert ("retention.labels_hours = 12 is shorter than the query lifetime "
            "learner.query_ttl_s = 86400 s (24 h)") in refused.stderr
    assert floor_env["STREAM_AL_TOPICS__LABELS"] not in kafka_admin.list_topics()
