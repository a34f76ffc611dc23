"""Setting the desk's authentication up: ``stream-al desk users`` and its file, the
session key made once in the state directory, the settings that choose how people are
named, and TLS."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from typer.testing import CliRunner

from consumers.cli import build_cli
from consumers.oracle.desk.accounts import Accounts
from consumers.oracle.desk.app import create_app
from consumers.oracle.desk.auth import FixedLabeler, PasswordLogin, ProxyUser, desk_auth
from consumers.oracle.desk.serve import uvicorn_config
from consumers.oracle.desk.sessions import secret_path, session_secret
from consumers.settings import DeskSettings, Settings, load_settings
from stream_al.errors import ConfigError
from tests.desk_support import RecordingDesk

PASSWORD = "correct horse battery"


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("STREAM_AL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STREAM_AL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def users(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(build_cli(), ["desk", "users", *args], input=stdin)
    return result.exit_code, result.output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- stream-al desk users -----------------------------------------------------------------


def test_users_add_writes_a_private_file_holding_a_hash_not_the_password(state_dir: Path
                                                                        ) -> None:
    code, output = users("add", "ann", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, output
    path = state_dir / "desk-users.json"
    assert mode(path) == 0o600 and mode(state_dir) == 0o700
    text = path.read_text()
    assert PASSWORD not in text
    assert json.loads(text)["users"]["ann"]["hash"].startswith("$argon2id$")
    assert Accounts(path).verify("ann", PASSWORD)
    assert not Accounts(path).verify("ann", PASSWORD.upper())


def test_users_add_asks_twice_and_list_and_remove_see_it(state_dir: Path) -> None:
    code, output = users("add", "eng 42", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0, output
    assert "Repeat for confirmation" in output and PASSWORD not in output
    users("add", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    assert users("list") == (0, "bob\neng 42\n")
    assert users("remove", "bob")[0] == 0
    assert users("list") == (0, "eng 42\n")
    assert mode(state_dir / "desk-users.json") == 0o600


def test_users_refuses_what_it_cannot_do_and_says_why(state_dir: Path) -> None:
    users("add", "ann", "--password-stdin", stdin=PASSWORD + "\n")
    refusals = [
        (users("add", "ann", "--password-stdin", stdin="another-password\n"), "already has"),
        (users("add", "bob", "--password-stdin", stdin="short\n"), "at least 8"),
        (users("add", "[/b]<x>", "--password-stdin", stdin=PASSWORD + "\n"), "not a desk name"),
        (users("add", "bob", "--password-stdin", stdin=""), "held no password"),
        (users("remove", "zed"), "zed has no account"),
    ]
    for (code, output), why in refusals:
        assert code == 2 and why in output, output
    assert users("list") == (0, "ann\n")


def test_users_add_replace_sets_a_new_password(state_dir: Path) -> None:
    users("add", "ann", "--password-stdin", stdin=PASSWORD + "\n")
    code, _ = users("add", "ann", "--replace", "--password-stdin", stdin="a-new-password\n")
    assert code == 0
    assert Accounts(state_dir / "desk-users.json").verify("ann", "a-new-password")


def test_users_file_setting_moves_the_accounts(state_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_AL_DESK__USERS_FILE", str(tmp_path / "elsewhere.json"))
    users("add", "ann", "--password-stdin", stdin=PASSWORD + "\n")
    assert (tmp_path / "elsewhere.json").is_file()
    assert not (state_dir / "desk-users.json").exists()


def test_a_corrupt_users_file_is_named(state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / "desk-users.json").write_text("{not json")
    code, output = users("list")
    assert code == 2 and "desk-users.json" in output


def test_the_desk_still_starts_with_no_subcommand(state_dir: Path) -> None:
    result = CliRunner().invoke(build_cli(), ["desk", "--help"])
    assert result.exit_code == 0 and "users" in result.output and "--port" in result.output


# --- the session key ------------------------------------------------------------------------


def test_the_session_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    first = session_secret(settings)
    assert len(first) >= 32
    assert mode(secret_path(settings)) == 0o600
    assert session_secret(settings) == first  # a restart keeps everyone logged in


def test_a_configured_session_key_is_used_and_a_short_one_refused(tmp_path: Path) -> None:
    key = "k" * 40
    settings = Settings(state_dir=tmp_path, desk=DeskSettings(session_secret=SecretStr(key)))
    assert session_secret(settings) == key.encode()
    assert not secret_path(settings).exists()
    short = Settings(state_dir=tmp_path, desk=DeskSettings(session_secret=SecretStr("k" * 8)))
    with pytest.raises(ConfigError, match="at least 32") as refused:
        desk_auth(short)
    assert "k" * 8 not in str(refused.value)  # a secret is never echoed


def test_a_damaged_key_file_is_named(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    secret_path(settings).write_text("\n")
    with pytest.raises(ConfigError, match="desk-session-secret"):
        session_secret(settings)


# --- how people are named ---------------------------------------------------------------


def test_the_settings_choose_how_people_are_named(tmp_path: Path) -> None:
    def identity(**desk: str) -> object:
        return desk_auth(Settings(state_dir=tmp_path, desk=DeskSettings(**desk))).identity

    assert isinstance(identity(), PasswordLogin)
    assert isinstance(identity(labeler="line-3"), FixedLabeler)
    assert isinstance(identity(trusted_user_header="X-Forwarded-User"), ProxyUser)


def test_a_fixed_name_and_a_proxy_header_together_are_a_settings_error() -> None:
    with pytest.raises(ConfigError, match="not both"):
        load_settings(desk={"labeler": "a", "trusted_user_header": "X-Forwarded-User"})


# --- TLS ------------------------------------------------------------------------------------


def test_tls_needs_both_files_or_neither() -> None:
    for half in ({"tls_certfile": "desk.pem"}, {"tls_keyfile": "desk.key"}):
        with pytest.raises(ConfigError, match="both desk.tls_certfile and desk.tls_keyfile"):
            load_settings(desk=half)


def test_uvicorn_serves_https_with_the_configured_files_and_cookies_turn_secure(
        tmp_path: Path) -> None:
    desk = DeskSettings(tls_certfile=Path("/etc/desk.pem"), tls_keyfile=Path("/etc/desk.key"))
    config = uvicorn_config(Starlette(), desk)
    assert (config.ssl_certfile, config.ssl_keyfile) == (desk.tls_certfile, desk.tls_keyfile)
    plain = uvicorn_config(Starlette(), DeskSettings())
    assert (plain.ssl_certfile, plain.ssl_keyfile) == (None, None)
    assert desk_auth(Settings(state_dir=tmp_path, desk=desk)).secure_cookies
    assert not desk_auth(Settings(state_dir=tmp_path)).secure_cookies


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "desk.pem", tmp_path / "desk.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def https_desk(certificate: tuple[Path, Path], tmp_path: Path) -> Iterator[int]:
    """The desk app served by uvicorn with the certificate, as ``serve`` does; its port."""
    cert, key = certificate
    settings = Settings(state_dir=tmp_path, desk=DeskSettings(
        labeler="line-3", tls_certfile=cert, tls_keyfile=key))
    server = uvicorn.Server(uvicorn_config(create_app(RecordingDesk(), desk_auth(settings)),
                                           settings.desk))
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def test_the_desk_answers_over_https_with_a_secure_cookie(https_desk: int,
                                                         certificate: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    connection = http.client.HTTPSConnection("127.0.0.1", https_desk, context=context,
                                             timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200
        cookie = (response.getheader("set-cookie") or "").lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    finally:
        connection.close()
