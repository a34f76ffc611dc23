"""The labelling desk in headless Chromium against the real broker, used as engineers would.

Two people (two browser contexts) log in with accounts the test makes with
``stream-al desk users add`` and work one desk process: requests produced to the topic
appear live, are answered by key, by click and as a new class, the labels land on the
label topic signed with each person's name, and neither ever sees the other's claimed
card. A forged or tampered session cookie gets the login page, and a page on another
port of the same host (same site: the Strict cookie goes along) lands no label.
Twenty answers in a row each bring the next card on screen before the next key (with
shared and with local claims; the delays are reported), and one engineer's tabs and
browsers hold one claim between them. Screenshots go to ``tests/artifacts/desk/``
(untracked; the path is printed).
"""

from __future__ import annotations

import base64
import contextlib
import json
import select
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from consumers.oracle.desk.auth import SESSION_COOKIE
from consumers.oracle.desk.claims import DeskClaim, decode_claim
from stream_al.records import OracleLabel
from tests.clients_support import CLIENTS
from tests.desk_support import floor_request, oracle_request, produce, read_labels, stream_al_env

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("kafka_client", CLIENTS)]
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "desk"
# Test-side only: remember every query id the page ever rendered, however briefly.
RECORD_SEEN = """
window.__seen = new Set();
new MutationObserver((changes) => {
  for (const change of changes) for (const node of change.addedNodes) {
    if (node.nodeType !== 1) continue;
    for (const el of [node, ...node.querySelectorAll("[data-query-id]")]) {
      if (el.dataset && el.dataset.queryId) window.__seen.add(el.dataset.queryId);
    }
  }
}).observe(document, {childList: true, subtree: true});
"""
#: Test-side only: every card put on screen (query id, when), and every "Nothing to label".
LOG_CARDS = """
window.__cards = [];
window.__empties = 0;
new MutationObserver((changes) => {
  for (const change of changes) for (const node of change.addedNodes) {
    if (node.nodeType !== 1) continue;
    if (node.id === "card") window.__cards.push([node.dataset.queryId, performance.now()]);
    if (node.classList.contains("empty") && node.textContent.startsWith("Nothing to label")) {
      window.__empties += 1;
    }
  }
}).observe(document, {childList: true, subtree: true});
"""
EMPTY = "text=Nothing to label"
PASSWORDS = {"eng-ann": "ann-desk-pass-1", "eng-bob": "bob-desk-pass-2"}
STREAM_AL = str(Path(sys.executable).parent / "stream-al")


@pytest.fixture
def topics(create_topic: Callable[[str, int], str], unique_topic: Callable[[str], str]
           ) -> tuple[str, str, str]:
    """Requests, labels, and a claim topic name the desk creates itself."""
    return (create_topic(unique_topic("requests"), 3), create_topic(unique_topic("labels"), 1),
            unique_topic("claims"))


@pytest.fixture
def desk_env(kafka_bootstrap: str, topics: tuple[str, str, str], tmp_path: Path,
             kafka_client: str) -> dict[str, str]:
    """The desk's environment, its state dir holding an account for each of PASSWORDS
    (made as an admin would, with ``stream-al desk users add``)."""
    env = stream_al_env(kafka_bootstrap, *topics, kafka_client) | {
        "STREAM_AL_STATE_DIR": str(tmp_path)}
    for name, password in PASSWORDS.items():
        subprocess.run([STREAM_AL, "desk", "users", "add", name, "--password-stdin"],
                       input=password + "\n", env=env, check=True, capture_output=True,
                       text=True, timeout=60)
    return env


@contextlib.contextmanager
def running_desk(env: dict[str, str], log_path: Path, *options: str) -> Iterator[str]:
    """A real ``stream-al desk`` process on a free port, its address; stopped (and
    checked) after."""
    command = [STREAM_AL, "desk", "--host", "127.0.0.1", "--port", "0", *options]
    with log_path.open("w") as log:
        desk = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log,
                                text=True)
        try:
            yield _address(desk)
        finally:
            desk.terminate()
            if desk.stdout is not None:
                desk.stdout.close()
            assert desk.wait(timeout=20) == 0, log_path.read_text()


@pytest.fixture
def desk_url(desk_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A real ``stream-al desk`` process on a free port; stopped (and checked) after."""
    with running_desk(desk_env, tmp_path / "desk.log") as url:
        yield url


def _address(desk: subprocess.Popen[str]) -> str:
    assert desk.stdout is not None
    ready, _, _ = select.select([desk.stdout], [], [], 60)
    line = desk.stdout.readline() if ready else ""
    assert "http://" in line, f"the desk did not start: {line!r}"
    return line.split()[2]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def log_in(browser: Any, url: str, name: str, password: str | None = None) -> Any:
    """A new browser context logged in through the login page as ``name``."""
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    context.add_init_script(RECORD_SEEN)
    context.add_init_script(LOG_CARDS)
    page = context.new_page()
    page.goto(url)  # no session yet: the desk sends the login page
    page.fill("#name", name)
    page.fill("#password", password or PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_selector(f"text=labelling as {name}")
    return page


#: A label posted from the desk's own page, as desk.js posts it (JSON and the CSRF token).
SEND_AS_THE_PAGE_DOES = """async (body) => {
  const session = await (await fetch("/api/session")).json();
  const response = await fetch("/api/label", {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-CSRF-Token": session.csrf}});
  return {status: response.status, reply: await response.json()};
}"""


def card_of(page: Any, query_id: str) -> str:
    return f"#card[data-query-id='{query_id}']"


def seen(page: Any) -> set[str]:
    return set(page.evaluate("Array.from(window.__seen)"))


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_two_engineers_label_by_key_click_and_new_class_without_overlap(
        kafka_bootstrap: str, topics: tuple[str, str, str], desk_url: str, browser: Any) -> None:
    requests_topic, labels_topic, _ = topics
    q1, q3 = oracle_request(1, uncertainty=0.9), oracle_request(3, uncertainty=0.5)
    ann = log_in(browser, desk_url, "eng-ann")
    ann.wait_for_selector(EMPTY)

    produce(kafka_bootstrap, requests_topic, q1, q3)
    ann.wait_for_selector(card_of(ann, q1.query_id))  # live: no reload
    shoot(ann, "1-ann-card")

    bob = log_in(browser, desk_url, "eng-bob")
    bob.wait_for_selector(card_of(bob, q3.query_id))  # ann holds q1, so bob gets the next
    ann.wait_for_selector(f"#queue li[data-query-id='{q3.query_id}']", state="detached")
    shoot(bob, "2-bob-card")

    ann.keyboard.press("1")  # classes in name order: 1 = fail
    ann.wait_for_selector(EMPTY)
    bob.click("button.class-btn[data-label='pass']")
    bob.wait_for_selector(EMPTY)
    assert q1.query_id not in seen(bob)
    bob.context.close()  # bob leaves: the next card can only go to ann

    q5 = oracle_request(5, reason="novelty", uncertainty=0.3)
    produce(kafka_bootstrap, requests_topic, q5)
    ann.wait_for_selector(card_of(ann, q5.query_id))
    ann.keyboard.press("n")
    ann.keyboard.type("probe-mark")
    shoot(ann, "3-ann-new-class")
    ann.keyboard.press("Enter")
    ann.wait_for_selector(EMPTY)

    labels = read_labels(kafka_bootstrap, labels_topic, 3)
    assert {(x.query_id, x.label, x.labeler) for x in labels} == {
        (q1.query_id, "fail", "eng-ann"), (q3.query_id, "pass", "eng-bob"),
        (q5.query_id, "probe-mark", "eng-ann")}
    assert len(labels) == 3  # nothing answered twice


def test_cards_leave_when_answered_elsewhere_or_expired_and_bad_input_is_reported(
        kafka_bootstrap: str, topics: tuple[str, str, str], desk_url: str, browser: Any) -> None:
    requests_topic, labels_topic, _ = topics
    elsewhere = oracle_request(6)
    produce(kafka_bootstrap, requests_topic, b"{not json", elsewhere)
    ann = log_in(browser, desk_url, "eng-ann")
    ann.wait_for_selector(card_of(ann, elsewhere.query_id))
    ann.wait_for_selector("text=1 malformed requests skipped")

    answer = OracleLabel(query_id=elsewhere.query_id, label="fail", labeler="eng-term",
                         labeled_at=elsewhere.created_at)
    produce(kafka_bootstrap, labels_topic, answer)
    ann.wait_for_selector(EMPTY)
    ann.wait_for_selector("text=1 answered elsewhere")

    refused = ann.evaluate(SEND_AS_THE_PAGE_DOES, {"query_id": elsewhere.query_id,
                                                   "label": "pass"})
    assert refused["status"] == 409
    assert "already answered by eng-term" in refused["reply"]["error"]

    # Made just before it is sent: its four seconds must not pass while logging in.
    short = oracle_request(7, reason="audit", expires_in=timedelta(seconds=4))
    produce(kafka_bootstrap, requests_topic, short)
    ann.wait_for_selector(card_of(ann, short.query_id))
    shoot(ann, "4-ann-audit-card")
    ann.wait_for_selector(EMPTY, timeout=30_000)  # expires_at passed: the card leaves
    ann.wait_for_selector("text=1 expired")
    shoot(ann, "5-ann-after-expiry")
    assert read_labels(kafka_bootstrap, labels_topic, 2, timeout_s=2) == [answer]


#: Another page on the desk's host, another port: the same *site*, so SameSite=Strict
#: cookies go with its requests. It tries a label every way a page can without CORS.
ATTACK = """<!doctype html><html><body>
<form id="form" method="post" action="{desk}api/label" enctype="text/plain" target="sink">
  <input name='{{"query_id":"{query_id}","label":"forged-form","x":"' value='"}}'>
</form>
<iframe name="sink"></iframe>
<script>
  const body = JSON.stringify({{query_id: "{query_id}", label: "forged-fetch"}});
  fetch("{desk}api/label", {{method: "POST", mode: "no-cors", credentials: "include",
    headers: {{"Content-Type": "text/plain"}}, body}});
  fetch("{desk}api/label", {{method: "POST", credentials: "include",
    headers: {{"Content-Type": "application/json"}}, body}}).catch(() => {{}});
  document.getElementById("form").submit();
</script>
</body></html>"""


@pytest.fixture
def other_port() -> Iterator[tuple[str, dict[str, str]]]:
    """A web server on another port of 127.0.0.1: its address, and the pages it serves
    (path → HTML), which the test fills in."""
    pages: dict[str, str] = {}

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = pages.get(self.path, "not here").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows what matters

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


def forged_cookie(user: str) -> str:
    claims = {"u": user, "h": "web-forged", "e": int(time.time()) + 3600, "s": ""}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"v1.{payload}.{base64.urlsafe_b64encode(b'x' * 32).decode().rstrip('=')}"


def tampered(cookie: str, user: str) -> str:
    version, payload, signature = cookie.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = json.dumps(claims | {"u": user}).encode()
    return f"{version}.{base64.urlsafe_b64encode(changed).decode().rstrip('=')}.{signature}"


def refused_to(browser: Any, url: str, cookie: str) -> Any:
    """A new browser holding only ``cookie`` opens the desk: 401 and the login page."""
    context = browser.new_context()
    context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": url}])
    page = context.new_page()
    response = page.goto(url)
    assert response.status == 401
    page.wait_for_selector("#password")
    assert page.request.get(f"{url}api/state").status == 401
    return page


def test_a_wrong_password_a_forged_cookie_and_another_ports_page_land_no_label(
        kafka_bootstrap: str, topics: tuple[str, str, str], desk_url: str, browser: Any,
        other_port: tuple[str, dict[str, str]]) -> None:
    requests_topic, labels_topic, _ = topics
    query = oracle_request(8)
    produce(kafka_bootstrap, requests_topic, query)

    wrong = browser.new_page()
    wrong.goto(desk_url)
    wrong.fill("#name", "eng-ann")
    wrong.fill("#password", "not-her-password")
    wrong.click("button[type=submit]")
    wrong.wait_for_selector("text=Wrong name or password.")
    assert wrong.url.endswith("/login")
    shoot(wrong, "6-wrong-password")
    ann = log_in(browser, desk_url, "eng-ann")
    ann.wait_for_selector(card_of(ann, query.query_id))

    for cookie in (forged_cookie("eng-ann"), tampered(session_of(ann), "eng-bob")):
        shoot(refused_to(browser, desk_url, cookie), "7-forged-cookie-login-page")

    site, pages = other_port
    pages["/win-a-prize"] = ATTACK.format(desk=desk_url, query_id=query.query_id)
    attacks = attack_from(ann.context.new_page(), f"{site}/win-a-prize")
    assert sorted(attacks) == [403, 403], attacks  # the no-cors fetch and the form post
    ann.bring_to_front()
    ann.wait_for_selector(card_of(ann, query.query_id))  # still hers, still open

    ann.keyboard.press("2")  # classes in name order: 2 = pass
    ann.wait_for_selector(EMPTY)
    labels = read_labels(kafka_bootstrap, labels_topic, 2, timeout_s=5)
    assert [(x.query_id, x.label, x.labeler) for x in labels] == [
        (query.query_id, "pass", "eng-ann")]


def session_of(page: Any) -> str:
    cookies = {c["name"]: c for c in page.context.cookies()}
    cookie = cookies[SESSION_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    return str(cookie["value"])


def attack_from(page: Any, url: str) -> list[int]:
    """Open the other port's page in the labeller's browser; the desk's answers to the
    label posts it made (seen by the browser, even where the page may not read them)."""
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status)
            if r.url.endswith("/api/label") and r.request.method == "POST" else None)
    page.goto(url)
    deadline = time.monotonic() + 10
    while len(statuses) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    page.wait_for_timeout(500)  # and anything later
    return statuses


def distinct_in_order(ids: list[str]) -> list[str]:
    """``ids`` without repeats of the one before (a card re-drawn by a live update)."""
    return [x for n, x in enumerate(ids) if n == 0 or ids[n - 1] != x]


@pytest.mark.parametrize("claims", ["shared", "local"])
def test_twenty_answers_in_a_row_each_bring_the_next_card_before_the_next_key(
        kafka_bootstrap: str, topics: tuple[str, str, str], desk_env: dict[str, str],
        tmp_path: Path, browser: Any, claims: str) -> None:
    requests_topic, labels_topic, _ = topics
    # One in four has a current above its limit; uncertainty sets the order they come in.
    cards = [floor_request(100 + n, uncertainty=0.99 - 0.01 * n, out_of_limit=n % 4 == 1)
             for n in range(25)]
    produce(kafka_bootstrap, requests_topic, *cards)
    options = ["--local-claims"] if claims == "local" else []
    with running_desk(desk_env, tmp_path / "desk.log", *options) as url:
        ann = log_in(browser, url, "eng-ann")
        ann.wait_for_selector(card_of(ann, cards[0].query_id))
        answered: list[str] = []
        delays: list[float] = []
        shot = False
        for _ in range(20):
            shown = ann.get_attribute("#card", "data-query-id")
            if not shot and ann.query_selector("tr.out-row td.out") is not None:
                ann.wait_for_selector("td.limits:text('mA')")
                shoot(ann, f"8-limits-and-an-out-of-limit-value-{claims}")
                shot = True
            pressed = ann.evaluate("performance.now()")
            ann.keyboard.press("1")  # fail
            # The next card, before the next key: a card that never comes fails here.
            try:
                ann.wait_for_selector(f"#card:not([data-query-id='{shown}'])", timeout=30_000)
            except Exception as stuck:  # what the page and the desk held when it stuck
                state = ann.evaluate("fetch('/api/state').then(r => r.text())")
                raise AssertionError(f"after answering {shown} (answer {len(answered) + 1}) "
                                     f"the page still shows "
                                     f"{ann.get_attribute('#card', 'data-query-id')}; "
                                     f"/api/state: {state[:3000]}") from stuck
            upcoming = ann.get_attribute("#card", "data-query-id")
            appeared = ann.evaluate(
                "(id) => window.__cards.find(([q, t]) => q === id)[1]", upcoming)
            answered.append(shown)
            delays.append((appeared - pressed) / 1000)
        shoot(ann, f"9-after-twenty-answers-{claims}")
        on_screen = [query_id for query_id, _ in ann.evaluate("window.__cards")]
        empties = ann.evaluate("window.__empties")
    report = (f"{claims} claims: next card on screen after each of 20 answers, seconds: "
              f"median {statistics.median(delays):.3f}, max {max(delays):.3f}, "
              f"{sum(d > 1.0 for d in delays)} over 1 s; all: "
              + " ".join(f"{d:.3f}" for d in delays))
    print(report)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"next-card-delays-{claims}.txt").write_text(report + "\n")
    assert empties == 0  # never "Nothing to label" while cards were queued
    # Every card shown once, in order: no older view put an answered card back.
    assert distinct_in_order(on_screen) == answered + [upcoming]
    assert shot, "no card with an out-of-limit value was shown"
    assert answered == [card.query_id for card in cards[:20]]
    labels = read_labels(kafka_bootstrap, labels_topic, 21, timeout_s=10)
    assert [(x.query_id, x.label, x.labeler) for x in labels] == [
        (query_id, "fail", "eng-ann") for query_id in answered]


def read_claims(bootstrap: str, topic: str) -> list[DeskClaim]:
    """Every claim on the claim topic so far."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        claims: list[DeskClaim] = []
        while consumer.position(partition) < end:
            for records in consumer.poll(timeout_ms=500).values():
                claims += [decode_claim(record.value) for record in records]
        return claims
    finally:
        consumer.close()


def test_one_engineers_two_tabs_and_second_browser_hold_one_claim(
        kafka_bootstrap: str, topics: tuple[str, str, str], desk_url: str, browser: Any) -> None:
    requests_topic, labels_topic, claims_topic = topics
    first, second, third = (floor_request(200 + n, uncertainty=0.9 - 0.1 * n) for n in range(3))
    produce(kafka_bootstrap, requests_topic, first, second, third)
    ann = log_in(browser, desk_url, "eng-ann")
    ann.wait_for_selector(card_of(ann, first.query_id))
    tab = ann.context.new_page()  # a second tab: the same session
    tab.goto(desk_url)
    elsewhere = log_in(browser, desk_url, "eng-ann")  # another browser: another session
    for page in (tab, elsewhere):
        page.wait_for_selector(card_of(page, first.query_id))
    bob = log_in(browser, desk_url, "eng-bob")
    bob.wait_for_selector(card_of(bob, second.query_id))
    # ann's three windows hold one card: bob sees one with others, one left in line.
    bob.wait_for_selector("#status:text('1 with others')")
    assert bob.text_content("#queue-size") == "(1)"
    shoot(elsewhere, "10-ann-second-browser-same-card")
    by_ann = [c for c in read_claims(kafka_bootstrap, claims_topic) if c.labeler == "eng-ann"]
    assert {c.query_id for c in by_ann if c.until is not None} == {first.query_id}
    assert len({c.holder for c in by_ann}) == 1

    tab.keyboard.press("2")  # an answer in one tab moves every window of ann on
    for page in (ann, tab, elsewhere):
        page.wait_for_selector(card_of(page, third.query_id))
    labels = read_labels(kafka_bootstrap, labels_topic, 2, timeout_s=10)
    assert [(x.query_id, x.label, x.labeler) for x in labels] == [
        (first.query_id, "pass", "eng-ann")]
