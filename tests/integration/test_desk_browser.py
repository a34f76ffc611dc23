"""The labelling desk in headless Chromium against the real broker, used as engineers would.

Two people (two browser contexts) work one desk process: requests produced to the topic
appear live, are answered by key, by click and as a new class, the labels land on the
label topic signed with each person's name, and neither ever sees the other's claimed
card. Screenshots go to ``tests/artifacts/desk/`` (untracked; the path is printed).
"""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stream_al.records import OracleLabel
from tests.desk_support import oracle_request, produce, read_labels, stream_al_env

pytestmark = pytest.mark.integration
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
EMPTY = "text=Nothing to label"


@pytest.fixture
def topics(create_topic: Callable[[str, int], str], unique_topic: Callable[[str], str]
           ) -> tuple[str, str, str]:
    """Requests, labels, and a claim topic name the desk creates itself."""
    return (create_topic(unique_topic("requests"), 3), create_topic(unique_topic("labels"), 1),
            unique_topic("claims"))


@pytest.fixture
def desk_url(kafka_bootstrap: str, topics: tuple[str, str, str], tmp_path: Path) -> Iterator[str]:
    """A real ``stream-al desk`` process on a free port; stopped (and checked) after."""
    command = [str(Path(sys.executable).parent / "stream-al"), "desk", "--host", "127.0.0.1",
               "--port", "0"]
    with (tmp_path / "desk.log").open("w") as log:
        desk = subprocess.Popen(command, env=stream_al_env(kafka_bootstrap, *topics),
                                stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            yield _address(desk)
        finally:
            desk.terminate()
            if desk.stdout is not None:
                desk.stdout.close()
            assert desk.wait(timeout=20) == 0, (tmp_path / "desk.log").read_text()


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


def log_in(browser: Any, url: str, name: str) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    context.add_init_script(RECORD_SEEN)
    page = context.new_page()
    page.goto(url)
    page.fill("#name", name)
    page.click("button[type=submit]")
    page.wait_for_selector(f"text=labelling as {name}")
    return page


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
    short = oracle_request(7, reason="audit", expires_in=timedelta(seconds=4))
    produce(kafka_bootstrap, requests_topic, b"{not json", elsewhere)
    ann = log_in(browser, desk_url, "eng-ann")
    ann.wait_for_selector(card_of(ann, elsewhere.query_id))
    ann.wait_for_selector("text=1 malformed requests skipped")

    answer = OracleLabel(query_id=elsewhere.query_id, label="fail", labeler="eng-term",
                         labeled_at=elsewhere.created_at)
    produce(kafka_bootstrap, labels_topic, answer)
    ann.wait_for_selector(EMPTY)
    ann.wait_for_selector("text=1 answered elsewhere")

    refused = ann.request.post(f"{desk_url}api/label",
                               data={"query_id": elsewhere.query_id, "label": "pass"})
    assert refused.status == 409
    assert "already answered by eng-term" in refused.json()["error"]

    produce(kafka_bootstrap, requests_topic, short)
    ann.wait_for_selector(card_of(ann, short.query_id))
    shoot(ann, "4-ann-audit-card")
    ann.wait_for_selector(EMPTY, timeout=30_000)  # expires_at passed: the card leaves
    ann.wait_for_selector("text=1 expired")
    shoot(ann, "5-ann-after-expiry")
    assert read_labels(kafka_bootstrap, labels_topic, 2, timeout_s=2) == [answer]
