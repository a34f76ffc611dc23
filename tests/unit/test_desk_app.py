"""The desk's web app and state without a broker: requests are fed as bytes, labels are
recorded instead of produced (the Kafka round trip is the browser test's job). Logging
in, sessions and CSRF have their own file, test_desk_auth.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from consumers.oracle.desk.app import create_app
from consumers.oracle.desk.auth import FixedLabeler, PasswordLogin
from tests.desk_support import RecordingDesk, accounts_with, auth_for, browser
from tests.desk_support import logged_in as logged_in_to
from tests.desk_support import oracle_request as ask

PASSWORDS = {"ann": "ann-secret-1", "bob": "bob-secret-2", "eng 42": "eng-secret-3"}


@pytest.fixture
def desk() -> RecordingDesk:
    return RecordingDesk()


@pytest.fixture
def app(desk: RecordingDesk, tmp_path: Path) -> Starlette:
    accounts = accounts_with(tmp_path / "users.json", **PASSWORDS)
    return create_app(desk, auth_for(PasswordLogin(accounts)))


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with browser(app) as client:
        yield client


def logged_in(app: Starlette, name: str) -> TestClient:
    return logged_in_to(app, name, PASSWORDS[name])


def test_the_page_asks_who_is_labelling_first(client: TestClient) -> None:
    assert client.get("/").headers["location"] == "/login"
    assert client.get("/api/state").status_code == 401
    assert client.post("/login", json={"name": "eng 42", "password": PASSWORDS["eng 42"]}
                       ).status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    assert "desk.js" in page.text
    assert client.get("/api/state").json()["labeler"] == "eng 42"


def test_two_people_get_different_cards_and_labels_are_signed(desk: RecordingDesk,
                                                              app: Starlette) -> None:
    first, second = ask(1, uncertainty=0.9), ask(2, uncertainty=0.7)
    desk.feed(first, second)
    ann, bob = logged_in(app, "ann"), logged_in(app, "bob")
    ann_view, bob_view = ann.get("/api/state").json(), bob.get("/api/state").json()
    assert ann_view["card"]["query_id"] == first.query_id
    assert bob_view["card"]["query_id"] == second.query_id
    assert bob_view["queue"] == []  # ann's card is not even listed for bob
    reply = ann.post("/api/label", json={"query_id": first.query_id, "label": "fail"}).json()
    assert reply | {"view": None} == {"ok": True, "query_id": first.query_id, "label": "fail",
                                      "labeler": "ann", "view": None}
    assert reply["view"]["card"] is None  # bob holds the only other card
    assert [(x.query_id, x.label, x.labeler) for x in desk.sent] == [
        (first.query_id, "fail", "ann")]


def test_a_second_label_for_a_query_is_refused_with_the_reason(desk: RecordingDesk,
                                                               app: Starlette) -> None:
    request = ask(1)
    desk.feed(request)
    ann, bob = logged_in(app, "ann"), logged_in(app, "bob")
    ann.get("/api/state")
    taken = bob.post("/api/label", json={"query_id": request.query_id, "label": "pass"})
    assert taken.status_code == 409
    assert "being answered by ann" in taken.json()["error"]
    ann.post("/api/label", json={"query_id": request.query_id, "label": "pass"})
    again = ann.post("/api/label", json={"query_id": request.query_id, "label": "fail"})
    assert again.status_code == 409
    assert "already answered by ann" in again.json()["error"]
    gone = ann.post("/api/label", json={"query_id": "q-vanished", "label": "fail"})
    assert "not open here" in gone.json()["error"]
    assert len(desk.sent) == 1


def test_an_empty_label_is_refused(desk: RecordingDesk, app: Starlette) -> None:
    request = ask(1)
    desk.feed(request)
    ann = logged_in(app, "ann")
    reply = ann.post("/api/label", json={"query_id": request.query_id, "label": "  "})
    assert reply.status_code == 409
    assert desk.sent == []


def test_a_configured_name_needs_no_login_and_is_one_engineer_in_every_browser(
        desk: RecordingDesk) -> None:
    desk.feed(ask(1), ask(2))
    app = create_app(desk, auth_for(FixedLabeler("line-3")))
    views = []
    for _ in range(2):
        with browser(app) as page:
            assert page.get("/").status_code == 200  # sets this browser's session cookie
            views.append(page.get("/api/state").json())
            assert page.get("/login").headers["location"] == "/"  # nothing to log in to
    assert {v["labeler"] for v in views} == {"line-3"}
    # Claims are the engineer's, not the browser's: one name holds one card.
    assert views[0]["card"]["query_id"] == views[1]["card"]["query_id"]


def test_skip_moves_the_card_to_the_back_and_logout_frees_it(desk: RecordingDesk,
                                                             app: Starlette) -> None:
    first, second = ask(1, uncertainty=0.9), ask(2, uncertainty=0.7)
    desk.feed(first, second)
    ann = logged_in(app, "ann")
    ann.get("/api/state")
    ann.post("/api/skip", json={"query_id": first.query_id})
    view = ann.get("/api/state").json()
    assert view["card"]["query_id"] == second.query_id
    assert [q["query_id"] for q in view["queue"]] == [first.query_id]
    assert ann.post("/logout", json={}).json() == {"ok": True, "next": "/login"}
    assert ann.get("/api/state").status_code == 401
    bob = logged_in(app, "bob")
    assert bob.get("/api/state").json()["card"]["query_id"] == first.query_id


def test_malformed_requests_are_counted_on_the_status_line(desk: RecordingDesk,
                                                           app: Starlette) -> None:
    desk.feed(b"{oops", ask(1))
    status = logged_in(app, "ann").get("/api/state").json()["status"]
    assert status["malformed_requests"] == 1
    assert status["open"] == 1


def test_the_card_shows_what_an_engineer_needs(desk: RecordingDesk, app: Starlette) -> None:
    desk.feed(ask(4))
    card = logged_in(app, "ann").get("/api/state").json()["card"]
    assert card["classes"] == ["fail", "pass"]
    assert [(m["name"], m["value"]) for m in card["measurements"]] == [
        ("fmax_mhz", 2034.5), ("idd_static_ma", 1.23), ("leak_ua", None),
        ("vdd_core_v", 0.9012)]
    assert ["die x/y", "4, 6"] in card["fields"]
    assert card["wafer_map"]["x"] == 4
    assert card["reason"] == "uncertainty"


def test_the_static_files_are_served(client: TestClient) -> None:
    assert "EventSource" in client.get("/static/desk.js").text
    assert "X-CSRF-Token" in client.get("/static/desk.js").text
    assert "application/json" in client.get("/static/login.js").text
    assert client.get("/login").status_code == 200


def test_three_tabs_of_one_engineer_hold_one_card(desk: RecordingDesk, app: Starlette) -> None:
    desk.feed(ask(1, uncertainty=0.9), ask(2, uncertainty=0.8), ask(3, uncertainty=0.7))
    tabs = [logged_in(app, "ann") for _ in range(3)]  # three logins: three sessions
    cards = {tab.get("/api/state").json()["card"]["query_id"] for tab in tabs}
    assert len(cards) == 1
    bob = logged_in(app, "bob").get("/api/state").json()
    assert bob["card"]["query_id"] not in cards
    assert bob["queue_size"] == 1  # ann's one card is hers; the third is still free
    claims = {desk.state.queue.claim_of(q.query_id) for q in (ask(1), ask(2), ask(3))}
    assert {c.labeler for c in claims if c is not None} == {"ann", "bob"}


def test_an_answer_replies_with_the_next_card_and_views_carry_a_version(
        desk: RecordingDesk, app: Starlette) -> None:
    first, second = ask(1, uncertainty=0.9), ask(2, uncertainty=0.7)
    desk.feed(first, second)
    ann = logged_in(app, "ann")
    before = ann.get("/api/state").json()
    reply = ann.post("/api/label", json={"query_id": first.query_id, "label": "fail"}).json()
    assert reply["view"]["card"]["query_id"] == second.query_id
    assert reply["view"]["version"] > before["version"]
    assert reply["view"]["instance"] == before["instance"]
    skipped = ann.post("/api/skip", json={"query_id": second.query_id}).json()
    assert skipped["view"]["card"]["query_id"] == second.query_id  # the only one left


def test_a_clicked_queue_row_opens_that_card(desk: RecordingDesk, app: Starlette) -> None:
    first, second, third = ask(1, uncertainty=0.9), ask(2, uncertainty=0.8), ask(3, uncertainty=0.7)
    desk.feed(first, second, third)
    ann, bob = logged_in(app, "ann"), logged_in(app, "bob")
    assert ann.get("/api/state").json()["card"]["query_id"] == first.query_id
    assert bob.get("/api/state").json()["card"]["query_id"] == second.query_id
    taken = ann.post("/api/take", json={"query_id": third.query_id}).json()
    assert taken["view"]["card"]["query_id"] == third.query_id
    assert first.query_id in [q["query_id"] for q in taken["view"]["queue"]]  # back in line
    refused = ann.post("/api/take", json={"query_id": second.query_id})
    assert refused.status_code == 409
    assert "someone else has it" in refused.json()["error"]


def test_with_kafka_unreachable_answers_are_refused_at_once_and_the_status_says_so(
        desk: RecordingDesk, app: Starlette) -> None:
    request = ask(1)
    desk.feed(request)
    ann = logged_in(app, "ann")
    ann.get("/api/state")
    desk.state.set_kafka_reachable(False)
    view = ann.get("/api/state").json()
    assert view["status"]["kafka"] == "unreachable"
    assert view["status"]["kafka_down"] == "Kafka unreachable: answers cannot be sent"
    assert view["card"]["query_id"] == request.query_id  # the card stays on screen
    refused = ann.post("/api/label", json={"query_id": request.query_id, "label": "fail"})
    assert refused.status_code == 503
    assert refused.json()["error"] == "Kafka unreachable: answers cannot be sent"
    assert desk.sent == []
    desk.state.set_kafka_reachable(True)
    assert ann.get("/api/state").json()["status"]["kafka"] == "ok"
    assert ann.post("/api/label", json={"query_id": request.query_id, "label": "fail"}
                    ).status_code == 200


def test_a_name_too_long_for_a_claim_still_labels(desk: RecordingDesk) -> None:
    desk.feed(ask(1))
    long_name = "operator " * 28  # 252 characters: desk.labeler allows 256
    app = create_app(desk, auth_for(FixedLabeler(long_name.strip())))
    with browser(app) as page:
        page.get("/")
        view = page.get("/api/state").json()
    assert view["card"]["query_id"] == ask(1).query_id
