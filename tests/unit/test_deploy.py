"""Deployment files, checked statically (no Docker engine runs here).

docker-compose.yml against the compose-spec JSON schema (as vendored by check-jsonschema),
every mounted host path, every service command against the installed ``stream-al`` CLI,
the Dockerfile's pins and user, and Prometheus's own tools on the config and the rules.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.kafka_local.jars import KAFKA_VERSION
from tests.prometheus_support import (
    DESIGN_METRICS,
    dashboard_expressions,
    promtool,
    require_module,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "stream-al.rules.yml"
GRAFANA = ROOT / "deploy" / "grafana"
STREAM_AL_IMAGE = "stream-al:local"

#: Commands or options the compose services use that are still being written (DESIGN §10).
#: The lead removes an entry when it lands: the test fails on an entry that already works.
PENDING_COMMANDS: dict[tuple[str, ...], str] = {}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


# -- docker-compose.yml -------------------------------------------------------------------


def compose_schema_errors(document: dict[str, Any]) -> list[str]:
    jsonschema = require_module("jsonschema", "jsonschema (via check-jsonschema)")
    require_module("check_jsonschema", "check-jsonschema, which vendors the compose-spec schema")
    from importlib import resources

    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


def test_compose_is_valid_against_the_compose_spec(compose: dict[str, Any]) -> None:
    assert compose_schema_errors(compose) == []


def test_the_schema_check_catches_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["stream-al"]["comand"] = broken["services"]["stream-al"].pop("command")
    assert any("comand" in error for error in compose_schema_errors(broken))


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of each bind mount, short or long syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
        elif volume.startswith((".", "/", "~")):
            source, target = volume.split(":")[:2]
            mounts.append((source, target))
    return mounts


def test_every_mounted_host_path_and_build_context_exists(compose: dict[str, Any]) -> None:
    mounted = [(name, source) for name, service in services(compose).items()
               for source, _ in bind_mounts(service)]
    assert mounted, "no bind mounts found: the parser no longer sees them"
    missing = [f"{name}: {source}" for name, source in mounted if not (ROOT / source).exists()]
    contexts = {s["build"] for s in services(compose).values() if isinstance(s.get("build"), str)}
    missing += [f"build context {c}" for c in contexts if not (ROOT / c / "Dockerfile").is_file()]
    assert missing == []


def test_images_are_pinned_to_the_versions_we_test_with(compose: dict[str, Any]) -> None:
    images = {name: s["image"] for name, s in services(compose).items()}
    external = {name: image for name, image in images.items() if image != STREAM_AL_IMAGE}
    for name, image in external.items():
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned"
    grafana = load_dashboard_builder().GRAFANA_TARGET
    assert images["kafka"] == f"apache/kafka:{KAFKA_VERSION}"
    assert images["grafana"] == f"grafana/grafana:{grafana}"
    built = [name for name, image in images.items() if image == STREAM_AL_IMAGE]
    assert all(services(compose)[name].get("build") == "." for name in built)


def test_the_daemon_gets_kafka_port_and_a_state_volume(compose: dict[str, Any]) -> None:
    daemon = services(compose)["stream-al"]
    env = daemon["environment"]
    assert env["STREAM_AL_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    state = env["STREAM_AL_STATE_DIR"]
    named = {v.split(":")[0]: v.split(":")[1] for v in daemon["volumes"] if ":" in v}
    assert named.get("stream-al-state") == state and "stream-al-state" in compose["volumes"]
    port = env["STREAM_AL_HTTP__PORT"]
    assert f"stream-al:{port}" in scrape_targets()
    assert f"127.0.0.1:{port}/healthz" in " ".join(daemon["healthcheck"]["test"])


def desk_port(desk: dict[str, Any]) -> str:
    port: str = desk["environment"]["STREAM_AL_DESK__PORT"]
    return port


def test_the_desk_listens_where_compose_reaches_it_and_keeps_its_accounts(
        compose: dict[str, Any]) -> None:
    desk = services(compose)["desk"]
    assert desk["command"] == ["desk"]
    assert "profiles" not in desk  # part of the default stack, not of the demo only
    env = desk["environment"]
    assert env["STREAM_AL_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    # 127.0.0.1 inside the container would be unreachable through the published port.
    assert env["STREAM_AL_DESK__HOST"] == "0.0.0.0"  # noqa: S104 (inside its container)
    port = desk_port(desk)
    assert desk["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"127.0.0.1:{port}/" in " ".join(desk["healthcheck"]["test"])
    # Its own volume at the state dir: accounts and the session key survive a restart,
    # apart from the daemon's checkpoints.
    named = {v.split(":")[0]: v.split(":")[1] for v in desk["volumes"] if ":" in v}
    assert named.get("desk-state") == env["STREAM_AL_STATE_DIR"]
    assert "desk-state" in compose["volumes"]
    assert "desk-state" not in services(compose)["stream-al"].get("volumes", [])


def test_the_desk_healthcheck_reads_a_page_that_needs_no_login(compose: dict[str, Any],
                                                               tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from consumers.oracle.desk.app import create_app
    from consumers.oracle.desk.auth import PasswordLogin
    from tests.desk_support import RecordingDesk, accounts_with, auth_for

    check = " ".join(services(compose)["desk"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:\d+(/[^'\s]*)", check)
    assert path is not None, check
    app = create_app(RecordingDesk(), auth_for(PasswordLogin(accounts_with(
        tmp_path / "users.json"))))
    with TestClient(app, follow_redirects=False) as client:
        assert client.get(path.group(1)).status_code == 200


def test_the_demo_profile_adds_a_floor_and_an_oracle(compose: dict[str, Any]) -> None:
    demo = {name for name, s in services(compose).items() if "demo" in s.get("profiles", [])}
    commands = {tuple(services(compose)[name]["command"][:2]) for name in demo}
    assert ("oracle", "simulate") in commands
    assert any(command[0] == "produce" for command in commands)


# -- every service command is a real stream-al command -------------------------------------


def stream_al_help(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The installed CLI on ``args --help``: exit 0 iff the command and its options exist."""
    beside_python = Path(sys.executable).with_name("stream-al")
    executable = str(beside_python) if beside_python.exists() else shutil.which("stream-al")
    assert executable, "stream-al is not installed (pip install -e .)"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([executable, *args, "--help"], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def pending_reason(args: list[str], error: str) -> str | None:
    """Why a failing command is allowed to fail: its PENDING_COMMANDS entry, if it names it."""
    for words, reason in PENDING_COMMANDS.items():
        if all(word in args for word in words) and words[-1] in error:
            return reason
    return None


def stream_al_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    return {name: s["command"] for name, s in services(compose).items()
            if s["image"] == STREAM_AL_IMAGE}


def test_every_service_command_is_a_stream_al_command(compose: dict[str, Any]) -> None:
    commands = stream_al_commands(compose)
    assert {"topics", "stream-al", "floor", "oracle", "desk"} <= set(commands)
    problems = []
    for name, args in commands.items():
        result = stream_al_help(args)
        pending = [w for w in PENDING_COMMANDS if all(word in args for word in w)]
        if result.returncode == 0 and pending:
            problems.append(f"{name}: {pending} works now: remove it from PENDING_COMMANDS")
        elif result.returncode != 0 and pending_reason(args, result.stderr) is None:
            problems.append(f"{name}: stream-al {' '.join(args)}: {result.stderr.strip()}")
    assert problems == []


# -- Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def test_dockerfile_pins_python_runs_as_a_user_and_enters_stream_al() -> None:
    instructions = dockerfile_instructions()
    [base] = [arg for op, arg in instructions if op == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    [entrypoint] = [arg for op, arg in instructions if op == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["stream-al"]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and line[0] != "#"]


def test_dockerfile_copies_what_the_package_build_needs() -> None:
    copied = [arg.split()[:-1] for op, arg in dockerfile_instructions() if op == "COPY"]
    sources = {source.rstrip("/") for group in copied for source in group}
    ignored = set(dockerignore_patterns())
    assert all((ROOT / source).exists() for source in sources)
    assert not sources & ignored, "the Dockerfile copies a path .dockerignore leaves out"
    with (ROOT / "pyproject.toml").open("rb") as handle:
        import tomllib

        project = tomllib.load(handle)
    packages = {name.rstrip("*") for name in
                project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", project["project"]["readme"]} <= sources


# -- Prometheus ---------------------------------------------------------------------------


def scrape_targets() -> list[str]:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    return [target for job in config["scrape_configs"] for static in job["static_configs"]
            for target in static["targets"]]


def test_promtool_accepts_the_config_and_finds_the_rules() -> None:
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(PROMETHEUS / "tests" / "stream-al.rules.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_waits_is_graded_and_tells_the_on_call_what_to_do() -> None:
    rules = alert_rules()
    assert {"StreamAlQueryRateAboveBudget", "StreamAlOracleBacklogGrowing",
            "StreamAlAuditAccuracyFalling", "StreamAlDeadLettersHigh", "StreamAlConsumerLagHigh",
            "StreamAlCheckpointStale"} <= {rule["alert"] for rule in rules}
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 100


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "tests" / "stream-al.rules.test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]
              if case["exp_alerts"]}
    assert tested == {rule["alert"] for rule in alert_rules()}


def test_compose_mounts_what_prometheus_loads(compose: dict[str, Any]) -> None:
    prometheus = services(compose)["prometheus"]
    mounts = dict(bind_mounts(prometheus))
    config_flag = next(f for f in prometheus["command"] if f.startswith("--config.file="))
    assert mounts["./deploy/prometheus/prometheus.yml"] == config_flag.split("=", 1)[1]
    assert mounts["./deploy/prometheus/rules"] == "/etc/prometheus/rules"


# -- Grafana ------------------------------------------------------------------------------


def load_dashboard_builder() -> Any:
    """deploy/grafana/build_dashboard.py as a module (it is a script, not a package)."""
    require_module("grafana_foundation_sdk", "grafana-foundation-sdk")
    if "build_dashboard" in sys.modules:
        return sys.modules["build_dashboard"]
    spec = importlib.util.spec_from_file_location("build_dashboard",
                                                  GRAFANA / "build_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_dashboard"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_committed_dashboard_is_what_the_builder_generates() -> None:
    committed = (GRAFANA / "dashboards" / "stream-al.json").read_text(encoding="utf-8")
    assert committed == load_dashboard_builder().render(), (
        "stale: run .venv/bin/python deploy/grafana/build_dashboard.py and commit the JSON")


def test_grafana_provisioning_matches_compose_and_the_dashboard(compose: dict[str, Any]) -> None:
    mounts = dict(bind_mounts(services(compose)["grafana"]))
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/stream-al.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == mounts["./deploy/grafana/dashboards"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    [source] = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in services(compose)
    # The dashboard's datasource variable starts at Grafana's default datasource.
    assert source["type"] == "prometheus" and source["isDefault"] is True


def datasource_refs(node: Any) -> list[dict[str, Any]]:
    """Every ``datasource`` reference anywhere in a dashboard: panels, targets, variables."""
    if isinstance(node, list):
        return [ref for item in node for ref in datasource_refs(item)]
    if not isinstance(node, dict):
        return []
    found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
    return found + [ref for value in node.values() for ref in datasource_refs(value)]


def fixed_datasource_uids(board: dict[str, Any]) -> list[str]:
    """The references that name a datasource by uid instead of the ``datasource`` variable:
    each breaks when the dashboard is imported into a Grafana without that uid."""
    return [f"{ref.get('type')}:{ref.get('uid')}" for ref in datasource_refs(board)
            if ref.get("uid") != "${datasource}" or ref.get("type") != "prometheus"]


def test_every_panel_and_variable_reads_the_datasource_variable() -> None:
    board = json.loads((GRAFANA / "dashboards" / "stream-al.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource", "prometheus")
    refs = datasource_refs(board)
    targets = [t for panel in board["panels"] for t in panel.get("targets", [])]
    assert len(refs) > len(targets) >= 10  # panels and the model variable are walked too
    assert fixed_datasource_uids(board) == []


def test_a_hard_coded_datasource_uid_is_caught() -> None:
    board = json.loads((GRAFANA / "dashboards" / "stream-al.json").read_text())
    board["panels"][-1]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "prometheus"}
    board["templating"]["list"][-1]["datasource"]["uid"] = "P1809F7CD0C75ACF3"
    assert fixed_datasource_uids(board) == ["prometheus:prometheus",
                                            "prometheus:P1809F7CD0C75ACF3"]


def test_checkpoint_age_is_not_computed_from_the_gauges_zero() -> None:
    """Before the first checkpoint the gauge reads 0 (metrics.md): time() - 0 is 56 years."""
    panels = dashboard_expressions(GRAFANA / "dashboards" / "stream-al.json")
    [expr] = panels["Checkpoint age"]
    assert "stream_al_last_checkpoint_timestamp_seconds > 0" in expr


def test_dashboard_plots_every_metric_and_filters_by_model() -> None:
    path = GRAFANA / "dashboards" / "stream-al.json"
    panels = dashboard_expressions(path)
    expressions = " ".join(expr for exprs in panels.values() for expr in exprs)
    assert [name for name in DESIGN_METRICS if name not in expressions] == []
    assert len(panels) >= 10 and all(exprs for exprs in panels.values())
    variables = json.loads(path.read_text())["templating"]["list"]
    assert [v["name"] for v in variables] == ["datasource", "model_key"]
    assert expressions.count('model_key=~"$model_key"') >= 4
