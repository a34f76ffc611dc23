"""Every topic setting reaches every command that uses the topic.

Each command is run as a user would (the CLI, STREAM_AL_TOPICS__* in the environment),
with the step that would speak to Kafka replaced by one that records what it was given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from consumers.cli import build_cli
from consumers.daemon.loop import Daemon
from consumers.kafka.topics import TopicPlan
from consumers.oracle.desk.service import DeskService
from stream_al.errors import BrokerUnavailable
from stream_al.topics import TopicNames

CUSTOM = {
    "parametric": "floor.parametric", "transactions": "floor.transactions",
    "predictions": "floor.predictions", "requests": "floor.requests",
    "labels": "floor.labels", "dlq": "floor.dlq", "claims": "floor.claims",
}


@pytest.fixture(autouse=True)
def custom_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STREAM_AL_"):
            monkeypatch.delenv(name)
    for field, name in CUSTOM.items():
        monkeypatch.setenv(f"STREAM_AL_TOPICS__{field.upper()}", name)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(build_cli(), list(args))


def test_every_topic_setting_is_a_field_of_topic_names() -> None:
    # A new topic must be added here too, or no test says which commands read it.
    assert set(TopicNames.model_fields) == set(CUSTOM) | {"inputs"}


def test_run_hands_the_daemon_every_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[TopicNames] = []

    def run(self: Daemon) -> int:
        seen.append(self.settings.topics)
        return 0

    monkeypatch.setattr(Daemon, "run", run)
    monkeypatch.setattr(Daemon, "install_signal_handlers", lambda self: None)
    result = invoke("run")
    assert result.exit_code == 0, result.output
    topics = seen[0]
    assert topics.inputs == (CUSTOM["parametric"], CUSTOM["transactions"])
    assert {f: getattr(topics, f) for f in CUSTOM} == CUSTOM


def test_topics_create_makes_every_configured_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []

    def create(kafka: object, plans: list[TopicPlan], replication: int,
               apply_retention: bool) -> dict[str, str]:
        created.extend(plan.name for plan in plans)
        return {plan.name: "created" for plan in plans}

    monkeypatch.setattr("consumers.kafka.topics.create_topics", create)
    result = invoke("topics", "create")
    assert result.exit_code == 0, result.output
    assert sorted(created) == sorted(CUSTOM.values())


@pytest.mark.parametrize("command", [["desk", "--port", "0"], ["oracle", "label"]])
def test_desk_and_terminal_use_the_configured_requests_labels_and_claims(
        command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str | None, TopicNames]] = []

    def start(self: DeskService) -> None:
        seen.append((self.claims_topic, self.settings.topics))
        raise BrokerUnavailable("recorded; not connecting in a unit test")

    monkeypatch.setattr(DeskService, "start", start)
    result = invoke(*command)
    assert result.exit_code == 3 and "recorded" in result.output
    claims, topics = seen[0]
    assert claims == CUSTOM["claims"]
    assert (topics.requests, topics.labels) == (CUSTOM["requests"], CUSTOM["labels"])


def test_local_claims_keep_no_claims_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def start(self: DeskService) -> None:
        seen.append(self.claims_topic)
        raise BrokerUnavailable("recorded")

    monkeypatch.setattr(DeskService, "start", start)
    monkeypatch.setenv("STREAM_AL_DESK__LOCAL_CLAIMS", "true")
    assert invoke("oracle", "label").exit_code == 3
    assert seen == [None]


def test_oracle_simulate_reads_and_writes_the_configured_topics(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[TopicNames] = []

    def run_oracle(settings: Any, *args: object, **kwargs: object) -> int:
        seen.append(settings.topics)
        return 0

    monkeypatch.setattr("consumers.oracle.simulate.run_oracle", run_oracle)
    assert invoke("oracle", "simulate", "--idle-exit", "1").exit_code == 0
    assert (seen[0].requests, seen[0].labels) == (CUSTOM["requests"], CUSTOM["labels"])


@pytest.mark.parametrize(("kind", "expected"), [("parametric", CUSTOM["parametric"]),
                                                ("transaction", CUSTOM["transactions"])])
def test_produce_writes_each_kind_to_its_configured_topic(
        kind: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def run_produce(files: object, options: object, *, topic: str, **kwargs: object) -> int:
        seen.append(topic)
        return 0

    monkeypatch.setattr("consumers.produce.run.run_produce", run_produce)
    data = tmp_path / "rows.csv"
    data.write_text("id,product,x\n1,P,0.5\n", encoding="utf-8")
    assert invoke("produce", "--kind", kind, "--dry-run", str(data)).exit_code == 0
    assert seen == [expected]


def test_produce_simulate_writes_to_the_configured_parametric_topic(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def run_simulated(records: int, seed: int, rate: float, topic: str,
                      *args: object) -> int:
        seen.append(topic)
        return 0

    monkeypatch.setattr("consumers.produce.simulated.run_simulated", run_simulated)
    assert invoke("produce", "--simulate", "--records", "1", "--dry-run").exit_code == 0
    assert seen == [CUSTOM["parametric"]]
