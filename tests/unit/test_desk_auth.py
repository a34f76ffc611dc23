"""Who may label at the desk, and from where: logging in, signed sessions, the name on
labels, the checks that keep other pages (other sites, other ports of this host) from
acting in a labeller's name, and the proxy-header mode. Without a broker: labels are
recorded by a RecordingDesk."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from consumers.oracle.desk.app import FAILED_LOGIN_S, create_app
from consumers.oracle.desk.auth import SESSION_COOKIE, PasswordLogin, ProxyUser
from consumers.oracle.desk.guard import CSRF_HEADER
from consumers.oracle.desk.sessions import SessionSigner
from tests.desk_support import (
    TEST_SECRET,
    RecordingDesk,
    accounts_with,
    auth_for,
    browser,
    logged_in,
    with_token,
)
from tests.desk_support import oracle_request as ask

ANN, BOB = ("ann", "ann-secret-1"), ("bob", "bob-secret-2")


@pytest.fixture
def desk() -> RecordingDesk:
    desk = RecordingDesk()
    desk.feed(ask(1, uncertainty=0.9), ask(2, uncertainty=0.8))
    return desk


@pytest.fixture
def users(tmp_path: Path) -> Path:
    accounts_with(tmp_path / "users.json", **dict([ANN, BOB]))
    return tmp_path / "users.json"


@pytest.fixture
def app(desk: RecordingDesk, users: Path) -> Starlette:
    return create_app(desk, auth_for(PasswordLogin(accounts_with(users))))


def label(client: TestClient, desk: RecordingDesk, **headers: str) -> int:
    """Post a label for the browser's card with ``headers``; the response status."""
    card = client.get("/api/state").json()["card"]
    body = {"query_id": card["query_id"], "label": "fail"}
    return client.post("/api/label", json=body, headers=headers).status_code


def cookie_of(client: TestClient) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value is not None
    return value


def refused_with_login_page(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 401
    assert 'id="password"' in page.text  # the login page, to log in again
    assert client.get("/api/state").status_code == 401


# --- logging in ------------------------------------------------------------------------


def test_the_right_password_opens_a_session_in_an_httponly_strict_cookie(app: Starlette
                                                                        ) -> None:
    client = browser(app)
    reply = client.post("/login", json={"name": "ann", "password": ANN[1]})
    assert reply.status_code == 200
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain HTTP here: a Secure cookie would never come back
    assert client.get("/").status_code == 200
    assert client.get("/api/session").json()["labeler"] == "ann"


def test_a_wrong_password_and_an_unknown_name_are_refused_alike_and_slowly(
        app: Starlette) -> None:
    client = browser(app)
    replies = []
    for name, password in (("ann", "not-her-password"), ("nobody", "whatever-it-is")):
        started = time.monotonic()
        reply = client.post("/login", json={"name": name, "password": password})
        assert time.monotonic() - started >= FAILED_LOGIN_S * 0.9
        replies.append((reply.status_code, reply.json()))
    assert replies[0] == replies[1] == (401, {"ok": False, "error": "wrong name or password"})
    assert SESSION_COOKIE not in client.cookies


def test_login_accepts_json_from_the_desk_only(app: Starlette) -> None:
    client = browser(app)
    form = client.post("/login", data={"name": "ann", "password": ANN[1]})
    assert form.status_code == 415
    foreign = client.post("/login", json={"name": "ann", "password": ANN[1]},
                          headers={"Origin": "http://testserver:9000"})
    assert foreign.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_a_new_password_or_a_removed_account_ends_its_sessions(app: Starlette,
                                                                users: Path) -> None:
    ann, bob = logged_in(app, *ANN), logged_in(app, *BOB)
    accounts = accounts_with(users)
    accounts.add("ann", "a-new-secret-9", replace=True)
    accounts.remove("bob")
    refused_with_login_page(ann)
    refused_with_login_page(bob)
    assert logged_in(app, "ann", "a-new-secret-9").get("/api/state").status_code == 200


# --- sessions ---------------------------------------------------------------------------


def test_a_forged_cookie_is_refused(app: Starlette) -> None:
    client = browser(app)
    payload = base64.urlsafe_b64encode(json.dumps(
        {"u": "ann", "h": "web-1", "e": int(time.time()) + 3600, "s": ""}).encode()).decode()
    client.cookies.set(SESSION_COOKIE, f"v1.{payload.rstrip('=')}.AAAA")
    refused_with_login_page(client)
    client.cookies.set(SESSION_COOKIE, "ann")  # the old desk's plain name cookie
    refused_with_login_page(client)


def test_a_tampered_cookie_is_refused(app: Starlette) -> None:
    client = logged_in(app, *BOB)
    version, payload, signature = cookie_of(client).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["u"] = "ann"  # bob's session, renamed
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, f"{version}.{changed}.{signature}")
    refused_with_login_page(client)


def test_a_cookie_signed_with_another_key_is_refused(app: Starlette) -> None:
    _, cookie = SessionSigner(b"some-other-desks-key-0123456789abcdef", 3600).issue("ann")
    client = browser(app)
    client.cookies.set(SESSION_COOKIE, cookie)
    refused_with_login_page(client)


def test_an_expired_session_is_refused(app: Starlette, users: Path) -> None:
    stamp = PasswordLogin(accounts_with(users)).stamp("ann")
    yesterday = SessionSigner(TEST_SECRET, 3600, clock=lambda: time.time() - 86_400)
    client = browser(app)
    client.cookies.set(SESSION_COOKIE, yesterday.issue("ann", stamp)[1])
    refused_with_login_page(client)
    today = SessionSigner(TEST_SECRET, 3600)
    client.cookies.set(SESSION_COOKIE, today.issue("ann", stamp)[1])  # in date: accepted
    assert client.get("/api/state").status_code == 200


# --- the name on labels -----------------------------------------------------------------


def test_a_label_is_signed_with_the_logged_in_name_whatever_the_body_says(
        app: Starlette, desk: RecordingDesk) -> None:
    ann = logged_in(app, *ANN)
    card = ann.get("/api/state").json()["card"]
    reply = ann.post("/api/label", json={"query_id": card["query_id"], "label": "fail",
                                         "labeler": "mallory"})
    assert reply.json()["labeler"] == "ann"
    assert [(x.query_id, x.labeler) for x in desk.sent] == [(card["query_id"], "ann")]


# --- other pages acting in a labeller's name ---------------------------------------------


def test_a_text_plain_post_is_refused(app: Starlette, desk: RecordingDesk) -> None:
    ann = logged_in(app, *ANN)
    card = ann.get("/api/state").json()["card"]
    body = json.dumps({"query_id": card["query_id"], "label": "fail"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
        reply = ann.post("/api/label", content=body, headers={"Content-Type": content_type})
        assert reply.status_code == 415, content_type
    assert desk.sent == []


@pytest.mark.parametrize("origin", ["http://testserver:9000", "http://evil.example", "null",
                                    "https://testserver"])
def test_a_foreign_origin_is_refused(app: Starlette, desk: RecordingDesk, origin: str) -> None:
    ann = logged_in(app, *ANN)
    assert label(ann, desk, Origin=origin) == 403
    assert desk.sent == []


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_request_from_another_site_or_port_is_refused(app: Starlette, desk: RecordingDesk,
                                                         site: str) -> None:
    ann = logged_in(app, *ANN)
    assert label(ann, desk, **{"Sec-Fetch-Site": site}) == 403
    assert ann.get("/api/state", headers={"Sec-Fetch-Site": site}).status_code == 403
    assert desk.sent == []


def test_the_desks_own_page_passes_every_check(app: Starlette, desk: RecordingDesk) -> None:
    ann = logged_in(app, *ANN)
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert label(ann, desk, **own) == 200
    assert len(desk.sent) == 1


def test_a_missing_or_foreign_csrf_token_is_refused(app: Starlette, desk: RecordingDesk
                                                     ) -> None:
    ann, bob = logged_in(app, *ANN), logged_in(app, *BOB)
    bobs_token = bob.headers[CSRF_HEADER]
    del ann.headers[CSRF_HEADER]
    assert label(ann, desk) == 403
    assert label(ann, desk, **{CSRF_HEADER: bobs_token}) == 403
    assert ann.post("/logout", json={}).status_code == 403
    assert desk.sent == []
    assert label(with_token(ann), desk) == 200


def test_every_response_forbids_framing_and_foreign_scripts(app: Starlette) -> None:
    for path in ("/login", "/static/desk.js", "/api/state"):
        headers = browser(app).get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
    assert browser(app).get("/api/state").headers["cache-control"] == "no-store"


# --- a reverse proxy names the person ----------------------------------------------------


@pytest.fixture
def proxied(desk: RecordingDesk) -> Starlette:
    return create_app(desk, auth_for(ProxyUser("X-Forwarded-User")))


def test_the_proxys_user_header_names_the_labeller(proxied: Starlette,
                                                   desk: RecordingDesk) -> None:
    client = browser(proxied)
    client.headers["X-Forwarded-User"] = "carol"
    assert client.get("/").status_code == 200
    assert client.get("/login").headers["location"] == "/"
    assert label(with_token(client), desk) == 200
    assert [x.labeler for x in desk.sent] == ["carol"]
    assert client.post("/login", json={"name": "carol", "password": "x"}).status_code == 404


def test_without_the_header_or_with_another_name_the_session_does_not_stand(
        proxied: Starlette, desk: RecordingDesk) -> None:
    client = browser(proxied)
    assert client.get("/").status_code == 401  # the proxy did not say who this is
    client.headers["X-Forwarded-User"] = "carol"
    client.get("/")
    with_token(client)
    client.headers["X-Forwarded-User"] = "dave"  # another person behind the same browser
    assert client.get("/api/state").status_code == 401
    assert client.post("/api/label", json={"query_id": ask(1).query_id, "label": "fail"}
                       ).status_code == 401
    client.headers["X-Forwarded-User"] = "<script>"
    assert client.get("/").status_code == 401
    assert desk.sent == []
