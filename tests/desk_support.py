"""Shared by the desk's tests: requests to produce or feed, labels to read back, a desk
that records labels instead of sending them, the desk's authentication with a test key
and quick password hashes, browsers logged in to an app, the environment of a
``stream-al`` process."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from starlette.applications import Starlette
from starlette.testclient import TestClient

from consumers.oracle.desk.accounts import Accounts
from consumers.oracle.desk.auth import DeskAuth, Identity
from consumers.oracle.desk.guard import CSRF_HEADER, SameOrigin
from consumers.oracle.desk.service import DeskService
from consumers.oracle.desk.sessions import SessionSigner
from consumers.settings import DeskSettings, Settings
from stream_al.codec import decode_label, encode
from stream_al.reasons import Reason
from stream_al.records import OracleLabel, OracleRequest, ParametricRecord, query_id_for
from tests.clients_support import command_env


def oracle_request(serial: int, reason: Reason = "uncertainty", uncertainty: float = 0.8,
                   expires_in: timedelta = timedelta(hours=1)) -> OracleRequest:
    """A parametric query on die (serial, serial+2) of wafer W07, asking pass or fail."""
    now = datetime.now(UTC)
    record_id = f"L123-W07-{serial:04d}"
    record = ParametricRecord(
        record_id=record_id, ts=now, product="PMIC-A7", test_program="FT_v3.2",
        tester_id="T-093", site=serial % 4, lot_id="L123", wafer_id="W07", die_x=serial % 15,
        die_y=(serial + 2) % 15,
        measurements={"vdd_core_v": 0.9012, "idd_static_ma": 1.23, "fmax_mhz": 2034.5,
                      "leak_ua": None})
    return OracleRequest(
        query_id=query_id_for(record_id, "PMIC-A7"), record_id=record_id, kind="parametric",
        model_key="PMIC-A7", reason=reason, uncertainty=uncertainty, threshold=0.61,
        proba={"pass": 0.52, "fail": 0.48}, predicted="pass", model_version=1532,
        created_at=now, expires_at=now + expires_in, record=record)


#: Limits of the measurements of ``oracle_request`` as a tester's program states them.
FLOOR_LIMITS = {"vdd_core_v": {"lo": 0.85, "hi": 0.95, "units": "V"},
                "idd_static_ma": {"lo": None, "hi": 1.5, "units": "mA"},
                "fmax_mhz": {"lo": 2000.0, "hi": None, "units": "MHz"},
                "leak_ua": {"lo": None, "hi": 5.0, "units": "uA"}}


def floor_request(serial: int, uncertainty: float = 0.8, out_of_limit: bool = False
                  ) -> OracleRequest:
    """``oracle_request(serial)`` as a floor sends it: values that vary from part to part,
    limits and units, bins and the failing tests; ``out_of_limit``: idd above its limit."""
    base = oracle_request(serial, uncertainty=uncertainty)
    spread = (serial * 37 % 11 - 5) / 5  # -1 … 1, the same for a serial every run
    values = {"vdd_core_v": 0.9 + 0.01 * spread, "idd_static_ma": 1.2 + 0.05 * spread,
              "fmax_mhz": 2050.0 + 20 * spread, "leak_ua": None}
    if out_of_limit:
        values["idd_static_ma"] = 2.4
    fields = {"measurements": values, "limits": FLOOR_LIMITS, "hard_bin": 1, "soft_bin": 1}
    if out_of_limit:
        fields |= {"hard_bin": 5, "soft_bin": 512, "failed_tests": ["idd_static_ma"]}
    record = ParametricRecord.model_validate(base.record.model_dump(mode="json") | fields)
    return base.model_copy(update={"record": record})


class RecordingDesk(DeskService):
    """A desk whose labels go to a list instead of Kafka, fed requests by hand."""

    def __init__(self) -> None:
        super().__init__(Settings(desk=DeskSettings(local_claims=True)))
        self.sent: list[OracleLabel] = []
        self.state.set_caught_up()

    def _send(self, message: OracleLabel) -> None:
        self.sent.append(message)

    def feed(self, *requests: OracleRequest | bytes) -> None:
        for request in requests:
            payload = request if isinstance(request, bytes) else encode(request)
            self.state.read_request(payload, "test", datetime.now(UTC))


#: The key unit tests sign sessions with (the desk's own is random, in the state dir).
TEST_SECRET = b"desk-unit-tests-session-key-0123456789"
#: Argon2 at its cheapest: the tests check the flow, not the hash's cost.
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def auth_for(identity: Identity, clock: Callable[[], float] = time.time,
              lifetime_s: float = 3600.0) -> DeskAuth:
    """The desk's authentication around ``identity``, sessions signed with TEST_SECRET."""
    return DeskAuth(identity, SessionSigner(TEST_SECRET, lifetime_s, clock), SameOrigin())


def accounts_with(path: Path, **passwords: str) -> Accounts:
    """An accounts file at ``path`` holding ``name=password`` for each one given."""
    accounts = Accounts(path, QUICK_HASHER)
    for name, password in passwords.items():
        accounts.add(name, password)
    return accounts


def browser(app: Starlette) -> TestClient:
    return TestClient(app, follow_redirects=False)


def logged_in(app: Starlette, name: str, password: str) -> TestClient:
    """A browser logged in as ``name``, sending its CSRF token as the desk's page does."""
    client = browser(app)
    assert client.post("/login", json={"name": name, "password": password}).status_code == 200
    with_token(client)
    return client


def with_token(client: TestClient) -> TestClient:
    """Send this browser's session CSRF token with every request from now on."""
    client.headers[CSRF_HEADER] = client.get("/api/session").json()["csrf"]
    return client


#: A scripted terminal's step: a typed line, or an action taken while no line comes.
Step = str | Callable[[], None]


class ScriptedLines:
    """The terminal labeller's input: each poll answers with the next step (a key or a
    typed line, or an action and then nothing); EOF once the script is done."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)

    def poll(self, timeout_s: float) -> str | None:
        if not self.steps:
            raise EOFError
        step = self.steps.pop(0)
        if callable(step):
            step()
            return None
        return step

    poll_line = poll  # a new class's name is the next step too


def produce(bootstrap: str, topic: str, *payloads: OracleRequest | OracleLabel | bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for payload in payloads:
            if isinstance(payload, bytes):
                producer.send(topic, value=payload)
            else:
                producer.send(topic, key=payload.query_id.encode(), value=encode(payload))
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)


def read_labels(bootstrap: str, topic: str, count: int, timeout_s: float = 30.0
                ) -> list[OracleLabel]:
    """The first ``count`` labels on ``topic`` (fewer if the timeout passes first)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    labels: list[OracleLabel] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(labels) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                labels += [decode_label(record.value) for record in records]
    finally:
        consumer.close()
    return labels


def stream_al_env(bootstrap: str, requests_topic: str, labels_topic: str,
                  claims_topic: str, kafka_client: str) -> dict[str, str]:
    """The environment of a ``stream-al`` process using the test broker, topics and
    Kafka client."""
    return command_env(kafka_client) | {"STREAM_AL_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                  "STREAM_AL_TOPICS__REQUESTS": requests_topic,
                  "STREAM_AL_TOPICS__LABELS": labels_topic,
                  "STREAM_AL_TOPICS__CLAIMS": claims_topic}
