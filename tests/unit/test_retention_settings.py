"""``retention.*``: how long each topic family is kept, and what the settings refuse."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.kafka.topics import describe_ms, topic_plan
from consumers.settings import RetentionSettings, load_settings
from stream_al.errors import ConfigError
from stream_al.topics import TopicNames

HOUR_MS = 3_600_000


def retention_by_topic(retention: RetentionSettings) -> dict[str, str]:
    return {plan.name: plan.config["retention.ms"]
            for plan in topic_plan(TopicNames(), 6, retention)}


def test_every_family_gets_its_setting_and_claims_keep_a_day() -> None:
    kept = retention_by_topic(RetentionSettings(
        inputs_hours=10, predictions_hours=20, requests_hours=-1, labels_hours=40,
        dlq_hours=50))
    assert kept == {
        "ate.parametric": str(10 * HOUR_MS), "ate.transactions": str(10 * HOUR_MS),
        "stream-al.predictions": str(20 * HOUR_MS), "stream-al.oracle.requests": "-1",
        "stream-al.oracle.labels": str(40 * HOUR_MS), "stream-al.dlq": str(50 * HOUR_MS),
        "stream-al.oracle.claims": str(24 * HOUR_MS),
    }


def test_defaults_keep_requests_a_query_lifetime_longer_than_labels() -> None:
    settings = load_settings()
    kept = retention_by_topic(settings.retention)
    labels = int(kept["stream-al.oracle.labels"])
    requests = int(kept["stream-al.oracle.requests"])
    assert labels == 168 * HOUR_MS
    assert requests - labels >= settings.learner.query_ttl_s * 1000
    assert topic_plan(TopicNames()) == topic_plan(TopicNames(), 6, settings.retention)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"retention": {"labels_hours": 12}},
     "retention.labels_hours = 12 is shorter than the query lifetime learner.query_ttl_s = "
     "86400 s (24 h): open queries would be deleted before they are answered; raise it to "
     "at least 24"),
    ({"retention": {"requests_hours": 20, "labels_hours": -1}},
     "retention.requests_hours = 20 is shorter than the query lifetime"),
    ({"retention": {"requests_hours": 100}},
     "retention.requests_hours = 100 must be at least retention.labels_hours + "
     "learner.query_ttl_s (168 + 24 h)"),
    ({"retention": {"requests_hours": 1000, "labels_hours": -1}},
     "set retention.requests_hours = -1 too"),
    ({"retention": {"dlq_hours": 0}},
     "retention.dlq_hours = 0: Value error, use a number of hours above 0, or -1 to keep "
     "forever"),
])
def test_a_retention_that_would_lose_what_a_restore_reads_is_refused(
        overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(**overrides)
    assert message in str(refused.value)


def test_a_shorter_query_lifetime_allows_a_shorter_retention() -> None:
    settings = load_settings(learner={"query_ttl_s": 3600},
                             retention={"labels_hours": 2, "requests_hours": 3})
    assert retention_by_topic(settings.retention)["stream-al.oracle.labels"] == str(2 * HOUR_MS)


def test_forever_everywhere_is_allowed() -> None:
    settings = load_settings(retention={"labels_hours": -1, "requests_hours": -1})
    assert retention_by_topic(settings.retention)["stream-al.oracle.labels"] == "-1"
    assert describe_ms("-1") == "forever"
