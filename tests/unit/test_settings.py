"""Settings: file + environment, environment wins, and errors that name field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from consumers.cli import build_cli
from consumers.settings import load_settings, masked
from stream_al.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STREAM_AL_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_design_topic_names() -> None:
    settings = load_settings()
    assert settings.topics.labels == "stream-al.oracle.labels"
    assert settings.topics.inputs == ("ate.parametric", "ate.transactions")


def test_yaml_file_then_environment_overrides(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "stream-al.yaml"
    config.write_text("learner:\n  budget:\n    fraction: 0.05\nhttp:\n  port: 9200\n")
    monkeypatch.setenv("STREAM_AL_HTTP__PORT", "9300")
    monkeypatch.setenv("STREAM_AL_KAFKA__BOOTSTRAP_SERVERS", "k1:9092, k2:9092")
    monkeypatch.setenv("STREAM_AL_STATE_DIR", str(tmp_path / "state"))
    settings = load_settings(config)
    assert settings.learner.budget.fraction == 0.05
    assert settings.http.port == 9300
    assert settings.kafka.bootstrap_servers == ["k1:9092", "k2:9092"]
    assert settings.state_dir == tmp_path / "state"


def test_toml_file_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "stream-al.toml"
    config.write_text('[learner.gate]\nstrategy = "randomized"\n')
    monkeypatch.setenv("STREAM_AL_CONFIG", str(config))
    assert load_settings().learner.gate.strategy == "randomized"


@pytest.mark.parametrize(("text", "expected"), [
    ("learner:\n  budget:\n    fraction: 1.5\n", "learner.budget.fraction = 1.5"),
    ("learner:\n  gate:\n    strategy: smart\n", "learner.gate.strategy = 'smart'"),
    ("http:\n  prot: 80\n", "http.prot: unknown setting"),
    ("kafka:\n  security_protocol: TLS\n", "kafka.security_protocol = 'TLS'"),
])
def test_a_bad_file_names_the_field_value_and_what_is_allowed(tmp_path: Path, text: str,
                                                              expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert expected in message and str(config) in message and "[env STREAM_AL_" in message


def test_a_missing_or_unsupported_file_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    ini = tmp_path / "settings.ini"
    ini.write_text("[x]\n")
    with pytest.raises(ConfigError, match=r"\.yaml, \.yml, \.toml or \.json"):
        load_settings(ini)


def test_secrets_pass_to_the_client_but_are_masked_when_shown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_AL_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAM_AL_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAM_AL_KAFKA__SASL_PLAIN_USERNAME", "floor")
    monkeypatch.setenv("STREAM_AL_KAFKA__SASL_PLAIN_PASSWORD", "hunter2")
    settings = load_settings()
    options = settings.kafka.client_options()
    assert options["sasl_plain_password"] == "hunter2"
    assert options["security_protocol"] == "SASL_SSL"
    assert "hunter2" not in str(masked(settings))


def test_config_show_prints_masked_settings_and_fails_with_the_field() -> None:
    runner = CliRunner()
    shown = runner.invoke(build_cli(), ["config", "show", "--format", "json"],
                          env={"STREAM_AL_KAFKA__SASL_PLAIN_PASSWORD": "hunter2"})
    assert shown.exit_code == 0 and "hunter2" not in shown.output
    assert '"labels": "stream-al.oracle.labels"' in shown.output
    bad = runner.invoke(build_cli(), ["config", "show"],
                        env={"STREAM_AL_LEARNER__BUDGET__FRACTION": "2"})
    assert bad.exit_code == 2
    assert "learner.budget.fraction" in bad.output
    assert "audit_fraction" not in bad.output  # no follow-on noise from dependent defaults


def test_a_rejected_secret_is_never_echoed(tmp_path: Path) -> None:
    config = tmp_path / "stream-al.yaml"
    config.write_text('security:\n  request_key: "hunter2-short"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "security.request_key" in message and "at least 16 characters" in message
    assert "hunter2" not in message


def test_a_yaml_syntax_error_is_one_line_with_where(tmp_path: Path) -> None:
    config = tmp_path / "stream-al.yaml"
    config.write_text("kafka:\n  bootstrap_servers: [a\n  x: : :\n")
    result = CliRunner().invoke(build_cli(), ["config", "show", "--config", str(config)])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert "is not valid YAML: line 3, column 4" in line


def test_config_show_writes_toml_that_loads_back(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_cli(), ["config", "show", "--format", "toml"])
    assert result.exit_code == 0, result.output
    config = tmp_path / "stream-al.toml"
    config.write_text(result.output)
    assert load_settings(config).model_dump() == load_settings().model_dump()


def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    import os
    import re
    import socket
    import subprocess
    import sys

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_AL_")} | {
        "STREAM_AL_HTTP__PORT": str(port), "STREAM_AL_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "STREAM_AL_STATE_DIR": str(tmp_path / "state")}
    try:
        result = subprocess.run([sys.executable, "-m", "consumers", "run"], env=env,
                                capture_output=True, text=True, timeout=60, check=False,
                                stdin=subprocess.DEVNULL)
    finally:
        taken.close()
    assert result.returncode == 2, result.stderr
    *before, last = result.stderr.splitlines()
    # The error alone on its last line, whole: where, and the setting with its env var.
    assert re.fullmatch(rf"stream-al run: 127\.0\.0\.1:{port} is already in use \(another "
                        r"stream-al\?\); set http\.port \(env STREAM_AL_HTTP__PORT; 0 picks "
                        r"a free port\)", last), result.stderr
    # Before it only the daemon's own log lines (start-up), no traceback, no Kafka client.
    assert all(re.match(r"\S+ \S+ (INFO|WARNING) stream_al\.daemon: ", line)
               for line in before), result.stderr
