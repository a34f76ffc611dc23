"""The local broker's pure parts: config rendering (plain and secured), tool checks,
ports, cache, state, credentials and certificates.

No broker and no network here; the real start/stop is covered by tests/integration.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import cast

import pytest
from kafka.admin import (
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
)

from consumers.kafka_local import (
    BrokerExited,
    BrokerStartError,
    KafkaLocalError,
    LocalKafka,
    ToolMissing,
    process,
    reap_orphans,
)
from consumers.kafka_local import __main__ as cli
from consumers.kafka_local.acls import FLOOR_PRINCIPALS, ORACLE_GROUP, Grant, floor_grants
from consumers.kafka_local.broker import cluster_id, format_command, java_argfile
from consumers.kafka_local.certs import make_certificates
from consumers.kafka_local.config import (
    Ports,
    choose_ports,
    free_port,
    port_is_free,
    render_log4j2,
    render_server_properties,
)
from consumers.kafka_local.errors import DownloadError
from consumers.kafka_local.jars import ensure_jars, logging_backend, render_pom, slf4j_binding
from consumers.kafka_local.secure import (
    Credentials,
    SecureFiles,
    check_principal,
    client_security,
    connection_info,
    load_credentials,
    save_credentials,
    secure_listeners,
)
from consumers.kafka_local.state import (
    BrokerState,
    read_ports,
    read_state,
    write_ports,
    write_state,
)
from consumers.kafka_local.tools import java_major, require_tools
from stream_al.topics import TopicNames

POM = "{http://maven.apache.org/POM/4.0.0}"


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


# --- server.properties and log4j2 ---------------------------------------------------------


def test_properties_describe_a_single_node_kraft_broker_on_loopback(tmp_path: Path) -> None:
    props = parse_properties(render_server_properties(Ports(9092, 9093), tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props  # `format --standalone` refuses it
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.num.partitions"] == "1"
    assert "auto.create.topics.enable" not in props  # Kafka's default (on), as in compose


def test_every_internal_topic_fits_one_broker(tmp_path: Path) -> None:
    props = parse_properties(render_server_properties(Ports(1, 2), tmp_path))
    factors = {k: v for k, v in props.items() if k.endswith(("replication.factor", "min.isr"))}
    assert set(factors) == {
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    }
    assert set(factors.values()) == {"1"}


def test_a_backslash_in_the_data_dir_is_escaped_for_java_properties() -> None:
    props = parse_properties(render_server_properties(Ports(1, 2), Path("/tmp/a\\b")))
    assert props["log.dirs"] == "/tmp/a\\\\b"


def test_log4j2_config_is_xml_writing_to_the_given_file_even_with_odd_characters(
    tmp_path: Path,
) -> None:
    log = tmp_path / 'a&b"c' / "broker.log"
    root = ET.fromstring(render_log4j2(log))  # noqa: S314  # our own output, not untrusted
    appender = root.find("./Appenders/RollingFile")
    assert appender is not None and appender.get("fileName") == str(log)
    assert root.get("shutdownHook") == "disable"


# --- Java and Maven -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "22-ea" 2024-03-19', 22),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "11.0.2" 2019-01-15\nOpenJDK Runtime Environment', 11),
    ],
)
def test_java_major_version_is_parsed(output: str, major: int) -> None:
    assert java_major(output) == major


def test_output_without_a_version_is_rejected() -> None:
    with pytest.raises(ValueError, match="no Java version"):
        java_major("command not found")


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH is an empty folder: no java, no mvn (tests drop fakes in it)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return folder


def fake_java(folder: Path, version: str) -> Path:
    java = folder / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2020-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return java


def test_missing_java_and_maven_are_both_named_with_the_install_command(bare_path: Path) -> None:
    with pytest.raises(ToolMissing) as caught:
        require_tools(need_maven=True)
    message = str(caught.value)
    assert "Java 17+" in message and "Maven" in message
    assert "apt-get install openjdk-17-jre-headless maven" in message


def test_an_old_java_is_named_with_its_version(bare_path: Path) -> None:
    fake_java(bare_path, "11.0.2")
    with pytest.raises(ToolMissing, match=r"is Java 11"):
        require_tools(need_maven=False)


def test_maven_is_needed_only_to_download(bare_path: Path) -> None:
    java = fake_java(bare_path, "17.0.1")
    assert require_tools(need_maven=False) == java
    with pytest.raises(ToolMissing) as caught:
        require_tools(need_maven=True)
    assert "Maven" in str(caught.value) and "Java" not in str(caught.value).split("Install")[0]


def test_java_home_wins_over_path(
    bare_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home_bin = tmp_path / "jdk" / "bin"
    home_bin.mkdir(parents=True)
    monkeypatch.setenv("JAVA_HOME", str(home_bin.parent))
    fake_java(bare_path, "11.0.2")
    java_21 = fake_java(home_bin, "21.0.1")
    assert require_tools(need_maven=False) == java_21


def test_start_without_tools_fails_before_touching_the_network(
    bare_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(ToolMissing, match="Maven"):
        LocalKafka("t", cache_dir=tmp_path / "cache").start()


# --- ports ----------------------------------------------------------------------------------


def test_chosen_ports_are_free_and_distinct() -> None:
    ports = choose_ports()
    assert ports.broker != ports.controller
    assert port_is_free(ports.broker) and port_is_free(ports.controller)
    assert ports.bootstrap == f"127.0.0.1:{ports.broker}"


def test_a_requested_free_port_is_used() -> None:
    wanted = free_port()
    assert choose_ports(broker=wanted).broker == wanted


def test_a_requested_port_in_use_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(KafkaLocalError, match=f"port {port} .* in use"):
            choose_ports(broker=port)


def test_the_same_port_twice_is_refused() -> None:
    port = free_port()
    with pytest.raises(KafkaLocalError, match="must differ"):
        choose_ports(broker=port, controller=port)


# --- jar cache ------------------------------------------------------------------------------


def test_slf4j_1_and_2_get_their_own_log4j_binding() -> None:
    assert slf4j_binding("1.7.36") == "log4j-slf4j-impl"
    assert slf4j_binding("2.0.17") == "log4j-slf4j2-impl"


def touch_jars(libs: Path, *names: str) -> Path:
    libs.mkdir(parents=True, exist_ok=True)
    for name in names:
        (libs / name).touch()
    return libs


def test_logging_backend_follows_the_jars_kafka_pulled(tmp_path: Path) -> None:
    libs = touch_jars(
        tmp_path, "slf4j-api-2.0.17.jar", "log4j-api-2.24.3.jar", "kafka_2.13-4.4.0.jar"
    )
    artifacts = [(a, v) for _, a, v in logging_backend(libs)]
    assert artifacts == [
        ("log4j-api", "2.24.3"),
        ("log4j-core", "2.24.3"),
        ("log4j-slf4j2-impl", "2.24.3"),
    ]


def test_two_slf4j_apis_on_the_classpath_are_an_error(tmp_path: Path) -> None:
    libs = touch_jars(tmp_path, "slf4j-api-1.7.36.jar", "slf4j-api-1.7.25.jar")
    with pytest.raises(DownloadError, match="several slf4j-api"):
        logging_backend(libs)


def test_the_throwaway_pom_lists_the_dependencies_and_can_drop_transitives() -> None:
    deps = [("org.apache.kafka", "kafka_2.13", "4.4.0")]
    open_pom, isolated_pom = (
        ET.fromstring(render_pom(deps, isolated=i))  # noqa: S314  # our own output
        for i in (False, True)
    )
    artifact = open_pom.find(f"./{POM}dependencies/{POM}dependency/{POM}artifactId")
    assert artifact is not None and artifact.text == "kafka_2.13"
    assert open_pom.find(f".//{POM}exclusion") is None
    assert isolated_pom.find(f".//{POM}exclusion/{POM}artifactId") is not None


def test_a_complete_download_is_reused_without_maven(bare_path: Path, tmp_path: Path) -> None:
    home = tmp_path / "kafka" / "4.4.0"
    touch_jars(home / "libs", "kafka_2.13-4.4.0.jar")
    (home / "libs.complete").write_text("{}")
    assert ensure_jars("4.4.0", tmp_path) == home / "libs"  # no mvn on PATH: not called


def test_an_unmarked_download_is_redone(bare_path: Path, tmp_path: Path) -> None:
    touch_jars(tmp_path / "kafka" / "4.4.0" / "libs", "kafka_2.13-4.4.0.jar")
    with pytest.raises(FileNotFoundError, match="mvn"):  # it tried Maven again
        ensure_jars("4.4.0", tmp_path)
    assert not (tmp_path / "kafka" / "4.4.0" / "libs" / "kafka_2.13-4.4.0.jar").exists()


# --- state, identity, processes -------------------------------------------------------------


def test_a_restart_asks_for_the_last_starts_ports_and_falls_back_when_one_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka = LocalKafka("again", cache_dir=tmp_path)
    kafka.run_dir.mkdir(parents=True)
    assert kafka._wanted_ports() == (None, None)  # never started: free ones
    last = choose_ports()
    write_ports(kafka.run_dir / "ports.json", last)
    assert read_ports(kafka.run_dir / "ports.json") == last
    assert kafka._wanted_ports() == (last.broker, last.controller)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", last.broker))
        squatter.listen()
        assert kafka._wanted_ports() == (None, None)
    assert f"port {last.broker} or {last.controller}" in capsys.readouterr().err
    explicit = LocalKafka("again", cache_dir=tmp_path, port=last.controller + 1)
    assert explicit._wanted_ports() == (last.controller + 1, None)  # --port still wins
    (kafka.run_dir / "ports.json").write_text("{not json")
    assert kafka._wanted_ports() == (None, None)



def test_state_round_trips_and_a_corrupt_file_reads_as_none(tmp_path: Path) -> None:
    state = BrokerState(1, 1, 9092, 9093, "127.0.0.1:9092", "/d", "4.4.0")
    write_state(tmp_path / "state.json", state)
    assert read_state(tmp_path / "state.json") == state
    (tmp_path / "state.json").write_text("{not json")
    assert read_state(tmp_path / "state.json") is None
    assert read_state(tmp_path / "absent.json") is None


def test_cluster_id_is_base64url_of_16_bytes() -> None:
    text = cluster_id()
    assert len(base64.urlsafe_b64decode(text + "==")) == 16
    assert not text.startswith("-")


def test_a_zombie_or_reaped_pid_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    stat_file = Path(f"/proc/{child.pid}/stat")
    for _ in range(200):  # until it has exited, unreaped
        if stat_file.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            break
        time.sleep(0.01)
    assert not process.pid_alive(child.pid)
    child.wait()
    assert not process.pid_alive(child.pid)
    assert process.pid_alive(os.getpid())


def test_a_process_that_is_not_our_broker_is_not_recognised(tmp_path: Path) -> None:
    assert not process.runs_broker(os.getpid(), tmp_path / "server.properties")


def test_terminate_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    script = "trap '' TERM; sleep 60 & wait"
    child = process.spawn(["sh", "-c", script], tmp_path / "out", die_with_parent=True)
    time.sleep(0.2)  # let the shell install its trap
    process.terminate(child.pid, child.pid, grace=0.5, child=child)
    assert child.poll() is not None
    for _ in range(500):  # SIGKILL lands asynchronously; a survivor would run for 60 s
        if not live_members(child.pid):
            break
        time.sleep(0.01)
    assert live_members(child.pid) == [], "the group's sleep survived"


def live_members(pgid: int) -> list[int]:
    """Pids of the group that still run (zombies wait for init to reap them: not running)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat_file.parent.name))
    return members


# --- LocalKafka and the command line without a broker ---------------------------------------


def test_nothing_running_means_status_none_and_stop_false(tmp_path: Path) -> None:
    kafka = LocalKafka("idle", cache_dir=tmp_path)
    assert kafka.status() is None
    assert kafka.stop() is False
    with pytest.raises(KafkaLocalError, match="no local broker named 'idle'"):
        _ = kafka.bootstrap


def test_a_stale_state_file_does_not_count_as_running(tmp_path: Path) -> None:
    kafka = LocalKafka("stale", cache_dir=tmp_path)
    kafka.run_dir.mkdir(parents=True)
    state = BrokerState(os.getpid(), os.getpid(), 1, 2, "127.0.0.1:1", "/d", "4.4.0")
    write_state(kafka.run_dir / "state.json", state)  # our pid, but not kafka.Kafka
    assert kafka.status() is None
    assert kafka.stop() is False
    assert not (kafka.run_dir / "state.json").exists()


def test_orphans_of_dead_sessions_are_reaped_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    for owner in (dead.pid, os.getpid()):
        (tmp_path / "kafka-local" / f"pytest-{owner}").mkdir(parents=True)
    assert reap_orphans("pytest-", tmp_path) == [f"pytest-{dead.pid}"]
    assert [p.name for p in (tmp_path / "kafka-local").iterdir()] == [f"pytest-{os.getpid()}"]


def fake_kafka_install(cache: Path, folder: Path, broker_body: str) -> None:
    """A complete-looking jar cache and a ``java`` whose kafka.Kafka runs ``broker_body``."""
    home = cache / "kafka" / "4.4.0"
    touch_jars(home / "libs", "kafka_2.13-4.4.0.jar")
    (home / "libs.complete").write_text("{}")
    java = folder / "java"
    java.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "  *-version*) echo 'openjdk version \"17.0.1\"' >&2 ;;\n"
        "  *StorageTool*) ;;\n"
        f"  *) {broker_body} ;;\n"
        "esac\n"
    )
    java.chmod(java.stat().st_mode | stat.S_IEXEC)


def test_a_broker_that_exits_is_retried_then_reported_with_its_output(
    bare_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_kafka_install(tmp_path, bare_path, "echo 'boom: cannot bind'; exit 1")
    kafka = LocalKafka("exits", cache_dir=tmp_path)
    with pytest.raises(BrokerExited, match="boom: cannot bind"):
        kafka.start()
    assert capsys.readouterr().err.count("trying other free ports") == 2
    assert not (kafka.run_dir / "state.json").exists()


def test_a_broker_that_never_answers_is_killed_after_the_timeout(
    bare_path: Path, tmp_path: Path
) -> None:
    sleep = shutil.which("sleep", path=os.defpath)  # PATH itself is bare here
    fake_kafka_install(
        tmp_path, bare_path, f"echo $$ >{tmp_path}/pid; echo 'still starting'; exec {sleep} 60"
    )
    kafka = LocalKafka("mute", cache_dir=tmp_path, start_timeout=1.0)
    with pytest.raises(BrokerStartError, match="did not answer") as caught:
        kafka.start()
    assert not isinstance(caught.value, BrokerExited)  # a timeout is not retried
    assert "still starting" in str(caught.value)
    assert not (kafka.run_dir / "state.json").exists()
    assert not process.pid_alive(int((tmp_path / "pid").read_text()))


def test_cli_status_and_stop_without_a_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAM_AL_CACHE", str(tmp_path))
    assert cli.main(["status", "--name", "nobody"]) == 1
    assert cli.main(["stop", "--name", "nobody"]) == 0
    assert capsys.readouterr().out == ""  # stdout carries only a bootstrap address


def test_cli_start_failure_is_a_message_not_a_traceback(
    bare_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STREAM_AL_CACHE", str(tmp_path))
    assert cli.main(["start"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "apt-get install openjdk-17-jre-headless maven" in captured.err


# --- the secured broker: SASL_SSL, SCRAM-SHA-512, ACLs ------------------------------------

SECRET_PASSWORDS = {"admin": "admin-pw", "daemon": "daemon-pw"}


def secure_props(tmp_path: Path) -> dict[str, str]:
    files = SecureFiles(tmp_path / "secure")
    listeners = secure_listeners(files, Credentials(SECRET_PASSWORDS, "store-pw"))
    return parse_properties(render_server_properties(Ports(9092, 9093), tmp_path, listeners))


def test_the_secured_broker_listens_sasl_ssl_for_clients_and_sasl_for_its_controller(
    tmp_path: Path,
) -> None:
    props = secure_props(tmp_path)
    assert props["listeners"] == "SECURE://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "SECURE://127.0.0.1:9092"
    assert props["listener.security.protocol.map"] == "SECURE:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    assert props["inter.broker.listener.name"] == "SECURE"
    assert props["listener.name.secure.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    # PLAIN, not SCRAM, on the controller: SCRAM users are in the log it is replaying.
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert "sasl.enabled.mechanisms" not in props  # each listener names its own


def test_the_secured_broker_authorizes_with_admin_as_the_only_super_user(tmp_path: Path) -> None:
    props = secure_props(tmp_path)
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["super.users"] == "User:admin"  # not ANONYMOUS: no listener is open
    assert props["allow.everyone.if.no.acl.found"] == "false"


def test_jaas_logs_the_broker_in_as_admin_on_both_listeners(tmp_path: Path) -> None:
    props = secure_props(tmp_path)
    assert props["listener.name.secure.scram-sha-512.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="admin" password="admin-pw";'
    )
    assert props["listener.name.controller.plain.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-pw" user_admin="admin-pw";'
    )
    assert "daemon-pw" not in "".join(props.values())  # clients are SCRAM users, not JAAS


def test_tls_uses_the_generated_keystore_and_trusts_the_generated_ca(tmp_path: Path) -> None:
    props = secure_props(tmp_path)
    assert props["ssl.keystore.type"] == "PKCS12"
    assert props["ssl.keystore.location"] == str(tmp_path / "secure" / "broker.p12")
    assert props["ssl.keystore.password"] == props["ssl.key.password"] == "store-pw"
    assert props["ssl.truststore.type"] == "PEM"
    assert props["ssl.truststore.location"] == str(tmp_path / "secure" / "ca.pem")


def test_the_plain_format_command_is_unchanged_and_the_secure_one_adds_every_principal(
    tmp_path: Path,
) -> None:
    plain = format_command(tmp_path / "server.properties", "CID", None)
    assert plain == ["kafka.tools.StorageTool", "format", "-c",
                     str(tmp_path / "server.properties"), "-t", "CID", "--standalone"]
    secure = format_command(tmp_path / "server.properties", "CID",
                            Credentials(SECRET_PASSWORDS, "k"))
    assert secure == [*plain,
                      "--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-pw]",
                      "--add-scram", "SCRAM-SHA-512=[name=daemon,password=daemon-pw]"]


def test_the_java_argfile_quotes_every_argument() -> None:
    assert java_argfile(["a b", 'c"d', "e\\f"]) == '"a b"\n"c\\"d"\n"e\\\\f"\n'


# --- credentials ----------------------------------------------------------------------------


def test_credentials_always_hold_admin_and_keep_the_passwords_they_have() -> None:
    first = Credentials.create(["daemon"])
    assert sorted(first.passwords) == ["admin", "daemon"]
    assert len(set(first.passwords.values()) | {first.keystore_password}) == 3
    more = first.including(["daemon", "desk"])
    assert more.passwords["daemon"] == first.passwords["daemon"]
    assert more.keystore_password == first.keystore_password
    assert more.missing(["desk", "oracle"]) == ["oracle"]
    assert "pw" not in repr(Credentials(SECRET_PASSWORDS, "store-pw"))


@pytest.mark.parametrize("name", ["", "a b", "a,b", "x]", 'a"b', "-lead", "é", "a" * 65])
def test_a_principal_name_that_could_break_jaas_or_the_format_tool_is_refused(name: str) -> None:
    with pytest.raises(KafkaLocalError, match="principal"):
        check_principal(name)


def test_an_unknown_principal_is_named(tmp_path: Path) -> None:
    with pytest.raises(KafkaLocalError, match=r"no principal 'ghost' .*admin"):
        Credentials({"admin": "x"}, "k").password("ghost")


def test_credentials_are_saved_for_this_user_alone_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{}")
    path.chmod(0o644)  # an older, wider file is tightened, not trusted
    credentials = Credentials.create(["oracle"])
    save_credentials(path, credentials)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(path) == credentials
    path.write_text("[]")
    assert load_credentials(path) is None
    assert load_credentials(tmp_path / "absent.json") is None


def test_client_settings_log_a_principal_in_and_name_no_password_in_the_info(
    tmp_path: Path,
) -> None:
    files = SecureFiles(tmp_path)
    credentials = Credentials(SECRET_PASSWORDS, "k")
    assert client_security(files, credentials, "daemon") == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "daemon", "sasl_plain_password": "daemon-pw",
        "ssl_cafile": str(tmp_path / "ca.pem"),
    }
    info = connection_info("127.0.0.1:1", files, credentials)
    assert info["principals"] == ["admin", "daemon"]
    assert info["credentials_file"] == str(tmp_path / "credentials.json")
    assert "pw" not in json.dumps(info)


# --- certificates ---------------------------------------------------------------------------

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")


def _pem_from_keystore(files: SecureFiles, password: str, folder: Path) -> Path:
    pem = folder / "broker-and-key.pem"
    subprocess.run(
        ["openssl", "pkcs12", "-in", str(files.keystore), "-nodes", "-passin", "env:PW",
         "-out", str(pem)],
        check=True, capture_output=True, env={**os.environ, "PW": password})
    return pem


def _handshake(server_pem: Path, ca: Path) -> str:
    """TLS to 127.0.0.1 with ``server_pem``, verified as a strict client would; the peer's
    subject CN."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_pem)
    client_context = ssl.create_default_context(cafile=str(ca))
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        serving = threading.Thread(target=_accept_one, args=(listener, server_context))
        serving.start()
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            peer = tls.getpeercert()
        serving.join(timeout=10)
    assert peer is not None
    subject = cast(tuple[tuple[tuple[str, str], ...], ...], peer["subject"])
    return next(value for rdn in subject for key, value in rdn if key == "commonName")


def _accept_one(listener: socket.socket, context: ssl.SSLContext) -> None:
    connection, _ = listener.accept()
    try:
        with context.wrap_socket(connection, server_side=True) as tls:
            tls.recv(1)  # until the client closes
    except (ssl.SSLError, OSError):
        pass  # the client refused our certificate: what the test looks at is its side
    finally:
        connection.close()


@needs_openssl
def test_the_broker_certificate_is_trusted_for_127_0_0_1_and_the_ca_key_is_gone(
    tmp_path: Path,
) -> None:
    files = SecureFiles(tmp_path / "secure")
    make_certificates(files, "store-pw", "openssl", "unit")
    assert sorted(p.name for p in files.folder.iterdir()) == ["broker.p12", "ca.pem"]
    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700
    assert "PRIVATE KEY" not in files.ca.read_text()
    assert _handshake(_pem_from_keystore(files, "store-pw", tmp_path), files.ca) == "127.0.0.1"


@needs_openssl
def test_a_certificate_of_another_broker_is_not_trusted(tmp_path: Path) -> None:
    ours, theirs = SecureFiles(tmp_path / "ours"), SecureFiles(tmp_path / "theirs")
    make_certificates(ours, "pw-1", "openssl", "ours")
    make_certificates(theirs, "pw-2", "openssl", "theirs")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(_pem_from_keystore(theirs, "pw-2", tmp_path), ours.ca)


# --- starting secured, without a broker -----------------------------------------------------


def test_principals_need_a_secured_broker(tmp_path: Path) -> None:
    with pytest.raises(KafkaLocalError, match="secure"):
        LocalKafka("p", cache_dir=tmp_path, principals=["daemon"])


def test_a_data_dir_formatted_without_secure_is_refused_before_any_jvm(
    bare_path: Path, tmp_path: Path
) -> None:
    fake_kafka_install(tmp_path, bare_path, "exit 1")
    kafka = LocalKafka("was-plain", cache_dir=tmp_path, secure=True)
    kafka.data_dir.mkdir(parents=True)
    (kafka.data_dir / "meta.properties").write_text("formatted")
    with pytest.raises(KafkaLocalError, match="formatted without --secure"):
        kafka.start()


def fake_secure_kafka_install(cache: Path, folder: Path, seen: Path) -> None:
    """A jar cache, openssl on the bare PATH, and a ``java`` that keeps a copy of the
    format tool's @argfile (and its mode) in ``seen`` and whose broker exits at once."""
    fake_kafka_install(cache, folder, "")
    openssl = shutil.which("openssl", path=os.defpath)
    assert openssl is not None
    (folder / "openssl").symlink_to(openssl)
    cp, mode = (shutil.which(tool, path=os.defpath) for tool in ("cp", "stat"))  # PATH is bare
    java = folder / "java"
    java.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "  *-version*) echo 'openjdk version \"17.0.1\"' >&2 ;;\n"
        f'  *format.args*) for a; do last="$a"; done; f="${{last#@}}"; {cp} "$f" {seen}/argfile;'
        f' {mode} -c %a "$f" >{seen}/argfile.mode ;;\n'
        f'  *) echo "$*" >{seen}/broker.cmdline; exit 1 ;;\n'
        "esac\n"
    )


def test_a_secured_start_formats_with_every_principal_through_a_private_argfile(
    bare_path: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    fake_secure_kafka_install(tmp_path, bare_path, seen)
    kafka = LocalKafka("sec", cache_dir=tmp_path, secure=True, principals=["daemon", "oracle"])
    with pytest.raises(BrokerExited):
        kafka.start()
    credentials = load_credentials(kafka.secure_files.credentials)
    assert credentials is not None and sorted(credentials.passwords) == [
        "admin", "daemon", "oracle"]
    argfile = (seen / "argfile").read_text()
    for name, password in credentials.passwords.items():
        assert f'"SCRAM-SHA-512=[name={name},password={password}]"' in argfile
    assert (seen / "argfile.mode").read_text().strip() == "600"
    assert not (kafka.run_dir / "format.args").exists()  # removed once formatted
    assert stat.S_IMODE((kafka.run_dir / "server.properties").stat().st_mode) == 0o600
    assert kafka.secure_files.have_certificates()
    assert credentials.passwords["admin"] not in (seen / "broker.cmdline").read_text()


def test_cli_principal_without_secure_is_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAM_AL_CACHE", str(tmp_path))
    assert cli.main(["start", "--principal", "daemon"]) == 1
    assert "secure" in capsys.readouterr().err


# --- the floor's ACLs -----------------------------------------------------------------------


def _can(grants: list[Grant], operation: str, topic: str) -> set[str]:
    return {g.principal for g in grants if (g.resource, g.name, g.operation)
            == ("topic", topic, operation)}


def test_each_role_gets_what_its_command_does_and_nothing_more() -> None:
    topics = TopicNames()
    grants = floor_grants(topics, daemon_group="floor-7")
    assert {(g.resource, g.name, g.operation) for g in grants if g.principal == "daemon"} == {
        ("topic", "ate.parametric", "READ"), ("topic", "ate.transactions", "READ"),
        ("group", "floor-7", "READ"),
        ("topic", topics.requests, "READ"), ("topic", topics.requests, "WRITE"),
        ("topic", topics.labels, "READ"),
        ("topic", topics.predictions, "WRITE"), ("topic", topics.dlq, "WRITE"),
    }
    assert _can(grants, "WRITE", topics.requests) == {"daemon"}  # no one else can ask
    assert _can(grants, "WRITE", topics.labels) == {"desk", "oracle"}  # who may teach
    assert _can(grants, "WRITE", "ate.parametric") == {"producer"}
    assert _can(grants, "READ", topics.claims) == _can(grants, "WRITE", topics.claims) == {
        "desk"}
    assert {g.principal for g in grants if g.resource == "group"} == {"daemon", "oracle"}
    assert {g.principal for g in grants} == set(FLOOR_PRINCIPALS)


def test_a_grant_is_a_literal_allow_for_the_user_from_any_host() -> None:
    acl = Grant("oracle", "group", ORACLE_GROUP, "READ").acl()
    assert (acl.principal, acl.host) == ("User:oracle", "*")
    assert acl.operation == ACLOperation.READ and acl.permission_type == ACLPermissionType.ALLOW
    assert acl.resource_pattern == ResourcePattern(ResourceType.GROUP, ORACLE_GROUP,
                                                   ACLResourcePatternType.LITERAL)
