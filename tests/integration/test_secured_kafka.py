"""A floor on a secured broker: SASL_SSL with SCRAM-SHA-512, ACLs on, one principal per
role. ``stream-al produce``, ``run``, ``oracle simulate`` and ``desk`` each log in as
their own principal with the least-privilege ACLs of the README, and the loop still
closes: every record predicted, labels applied. A principal without WRITE on the label
topic cannot label, whatever else it may read.

The broker is this module's own (``scripts/kafka-local start --secure``), not the
session's PLAINTEXT one.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import TopicAuthorizationFailedError

from consumers.kafka_local import LocalKafka, reap_orphans
from consumers.kafka_local.acls import floor_grants, grant, in_force
from stream_al.codec import decode_prediction
from stream_al.topics import TopicNames
from tests.clients_support import CLIENTS
from tests.daemon_support import STREAM_AL, DaemonProc, Harness, Proc, total, wait_until
from tests.secured_kafka_support import (
    DAEMON_GROUP,
    PRINCIPALS,
    count,
    desk_status,
    desk_url,
    exit_code,
    intruder_grants,
    principal_config,
    read_all,
    send_one,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = 200
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka-local"
_PREFIX = "pytest-secure-"
#: The default names: the ACLs under test are the ones a floor sets on its topics.
TOPICS = TopicNames()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A secured broker of this module's own, every principal made when it is formatted."""
    reap_orphans(_PREFIX)  # brokers left by sessions that were SIGKILLed
    workdir = tmp_path_factory.mktemp("secured-kafka")
    kafka = LocalKafka(f"{_PREFIX}{os.getpid()}", data_dir=workdir / "data",
                       die_with_parent=True, secure=True, principals=PRINCIPALS,
                       start_timeout=300.0)  # a TLS broker on two busy cores is slow
    atexit.register(kafka.discard)  # second guard should the teardown never run
    try:
        kafka.start()
        yield kafka
    finally:
        kafka.stop()
        if kafka.log_file.is_file():  # kept with pytest's tmp dirs for a post-mortem
            shutil.copy2(kafka.log_file, workdir / "broker.log")
        kafka.discard()
        atexit.unregister(kafka.discard)


def make_floor(secured: LocalKafka, topics: TopicNames, workdir: Path) -> TopicNames:
    """``topics``, made by ``stream-al topics create`` as admin, and every role's ACLs."""
    config = principal_config(secured, "admin", topics, workdir)
    created = subprocess.run(  # noqa: S603 - an argument list, never a shell
        [STREAM_AL, "topics", "create", "--config", str(config), "--input-partitions", "3"],
        capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    grant(secured.client_options(),
          floor_grants(topics, daemon_group=DAEMON_GROUP) + intruder_grants(topics))
    return topics


@pytest.fixture(scope="module")
def floor(secured: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> TopicNames:
    """The default topic names and the floor's ACLs on them."""
    return make_floor(secured, TOPICS, tmp_path_factory.mktemp("admin"))


@pytest.fixture
def client_floor(secured: LocalKafka, floor: TopicNames, kafka_client: str,
                 tmp_path: Path) -> TopicNames:
    """The default names for kafka-python; for another client a topic set of its own
    (the same ACLs on it), so its run never reads what an earlier one left."""
    if kafka_client == "kafka-python":
        return floor
    own = TopicNames(**{field: f"{getattr(TOPICS, field)}-{kafka_client}"
                        for field in ("parametric", "transactions", "predictions",
                                      "requests", "labels", "dlq", "claims")})
    (workdir := tmp_path / "admin").mkdir()
    return make_floor(secured, own, workdir)


@pytest.fixture
def harness(secured: LocalKafka, client_floor: TopicNames, tmp_path: Path,
            kafka_client: str) -> Iterator[Harness]:
    """Kills every process the test started, on failure too."""
    with Harness(secured.bootstrap, client_floor, DAEMON_GROUP, tmp_path,
                 kafka_client) as harness:
        yield harness
    for proc in harness.procs:  # pytest shows what a teardown printed only on failure
        print(f"--- tail of {proc.log} ---\n{proc.output()[-4000:]}")


def start(harness: Harness, name: str, *args: str) -> Proc:
    proc = Proc(name, list(args), harness.workdir / f"{name}.log")
    harness.procs.append(proc)  # before anything can fail, so it is killed
    return proc


def config(secured: LocalKafka, principal: str, harness: Harness, **sections: Any) -> str:
    return str(principal_config(secured, principal, harness.topics, harness.workdir,
                                harness.client, **sections))


@pytest.mark.parametrize("kafka_client", CLIENTS)
def test_the_loop_closes_with_a_principal_per_role(secured: LocalKafka, harness: Harness
                                                   ) -> None:
    topics, admin = harness.topics, secured.client_options()
    daemon = harness.daemon("daemon", Path(config(
        secured, "daemon", harness, http={"host": "127.0.0.1", "port": 0},
        checkpoint={"interval_s": 1.0})))

    producer = start(harness, "producer", "produce", "--simulate", "--records",
                     str(RECORDS), "--config", config(secured, "producer", harness))
    assert exit_code(producer) == 0, producer.output()[-3000:]
    wait_until(lambda: scored(daemon) == RECORDS, f"the daemon to score {RECORDS} records")

    # Started once every request is on the topic, so its idle exit cannot come early.
    oracle = start(harness, "oracle", "oracle", "simulate", "--config",
                   config(secured, "oracle", harness), "--delay", "0.2", "--idle-exit", "5")
    assert exit_code(oracle) == 0, oracle.output()[-3000:]
    requests = count(admin, topics.requests)
    assert requests > 0 and count(admin, topics.labels) == requests  # each one answered
    wait_until(lambda: labels_read(daemon) == requests, "the daemon to read every label")
    assert labels_read(daemon, "applied") > 0

    sent = {json.loads(m.value)["record_id"] for m in read_all(admin, topics.parametric)}
    predicted = [decode_prediction(m.value).record_id
                 for m in read_all(admin, topics.predictions)]
    assert len(sent) == RECORDS and sorted(predicted) == sorted(sent)

    desk = start(harness, "desk", "desk", "--config", config(
        secured, "desk", harness, desk={"labeler": "eng-1", "host": "127.0.0.1", "port": 0}))
    url = desk_url(desk)
    wait_until(lambda: desk_status(url)["caught_up"] is True,
               "the desk to read the requests, labels and claims")
    status = desk_status(url)
    assert status["problem"] is None
    assert status["open"] == 0  # it has read every request and the label of each

    intruder = secured.client_options("intruder")
    assert len(read_all(intruder, topics.requests)) == requests  # it may read the questions
    assert daemon.terminate() == 0 and desk.terminate() == 0


@pytest.mark.parametrize("principal", ["intruder", "producer", "daemon"])
def test_a_principal_without_write_on_the_label_topic_cannot_label(
        secured: LocalKafka, floor: TopicNames, principal: str) -> None:
    before = count(secured.client_options(), floor.labels)
    with pytest.raises(TopicAuthorizationFailedError):
        send_one(secured.client_options(principal), floor.labels, b'{"forged": "label"}')
    assert count(secured.client_options(), floor.labels) == before


def scored(daemon: DaemonProc) -> float:
    return total(daemon.metrics(), "stream_al_records_total")


def labels_read(daemon: DaemonProc, outcome: str | None = None) -> float:
    labels = {} if outcome is None else {"outcome": outcome}
    return total(daemon.metrics(), "stream_al_labels_total", **labels)


def test_the_script_starts_a_secured_broker_whose_status_and_stop_work(tmp_path: Path) -> None:
    name = f"{_PREFIX}cli-{os.getpid()}"
    try:
        started = kafka_local("start", "--name", name, "--secure", "--floor-acls")
        assert started.returncode == 0, started.stderr
        bootstrap, line = started.stdout.splitlines()  # the address, then how to log in
        info = json.loads(line)
        assert info["bootstrap"] == bootstrap and info["security_protocol"] == "SASL_SSL"
        assert info["principals"] == ["admin", "daemon", "desk", "oracle", "producer"]
        assert Path(info["ssl_cafile"]).is_file()
        assert kafka_local("status", "--name", name).stdout == started.stdout
        kafka = LocalKafka(name)
        oracle = KafkaConsumer(**kafka.client_options("oracle"))
        try:
            assert oracle.topics() == set()  # logged in with the saved password; no topics yet
        finally:
            oracle.close()
        admin = KafkaAdminClient(**kafka.client_options())
        try:
            assert in_force(admin) == {g.acl() for g in floor_grants(TopicNames())}
        finally:
            admin.close()
        assert kafka_local("stop", "--name", name).returncode == 0
        assert kafka_local("status", "--name", name).returncode == 1
    finally:
        kafka_local("stop", "--name", name)
        LocalKafka(name).discard()


def kafka_local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,  # noqa: S603
                          timeout=420, check=False)
