"""``stream-al oracle label`` driven through a pseudo-terminal as a person would (pexpect),
against the real broker: cards appear as requests arrive, are answered by one keypress
(no Enter) or a new class name, skipped, dropped when someone else answers, and the
labels land on the label topic signed with the labeller's name. A long card keeps its
header on screen (its measurements are paged), and Ctrl-C gives the terminal back in
the mode it had."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stream_al.records import OracleLabel
from tests.clients_support import CLIENTS
from tests.desk_support import oracle_request, produce, read_labels, stream_al_env

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("kafka_client", CLIENTS)]
pexpect = pytest.importorskip("pexpect", reason="pip install pexpect")


@pytest.fixture
def topics(create_topic: Callable[[str, int], str], unique_topic: Callable[[str], str]
           ) -> tuple[str, str, str]:
    """Requests, labels, and a claim topic (created by the labeller itself)."""
    return (create_topic(unique_topic("requests"), 3), create_topic(unique_topic("labels"), 1),
            unique_topic("claims"))


STREAM_AL = str(Path(sys.executable).parent / "stream-al")


def spawn(name: str, bootstrap: str, topics: tuple[str, str, str], log: Path, client: str,
          rows: int = 60, then: str | None = None) -> Any:
    """``stream-al oracle label`` in a rows x 160 pseudo-terminal, its output logged;
    ``then``: a shell command run in the same terminal after it exits."""
    command = [STREAM_AL, "oracle", "label", "--labeler", name]
    if then is not None:
        # The shell traps Ctrl-C (it would die of it and hang the terminal up on the
        # labeller); a trap, unlike an ignored signal, is not inherited by the labeller.
        command = ["sh", "-c", f'trap : INT; "$0" "$@"; echo "exit=$?"; {then}', *command]
    term = pexpect.spawn(command[0], command[1:], env=stream_al_env(bootstrap, *topics, client),
                         encoding="utf-8", timeout=30, dimensions=(rows, 160))
    term.logfile_read = log.open("w")
    return term


def quit_cleanly(term: Any) -> None:
    term.send("q")  # one key, no Enter
    term.expect_exact("Bye.")
    term.expect(pexpect.EOF)


def test_a_person_labels_skips_and_adds_a_class_in_the_terminal(
        kafka_bootstrap: str, topics: tuple[str, str, str], tmp_path: Path,
        kafka_client: str) -> None:
    requests_topic, labels_topic, _ = topics
    q1 = oracle_request(1, uncertainty=0.9)
    produce(kafka_bootstrap, requests_topic, b"\x00garbage", q1)  # before it starts

    term = spawn("eng-term", kafka_bootstrap, topics, tmp_path / "terminal.log", kafka_client)
    try:
        term.expect_exact(q1.query_id)
        term.expect_exact("label> ")
        term.send("x")
        term.expect_exact("Press 1–2, n (new class)")
        term.send("1")  # classes in name order: 1 = fail; no Enter
        term.expect_exact(f"{q1.query_id}: labelled fail")
        term.expect_exact("Waiting for queries")

        q2, q3 = oracle_request(2, reason="novelty"), oracle_request(3, uncertainty=0.5)
        produce(kafka_bootstrap, requests_topic, q3, q2)
        term.expect_exact(q2.query_id)  # novelty first, although it came second
        term.expect_exact("label> ")
        term.send("s")
        term.expect_exact(f"Skipped {q2.query_id}.")
        term.expect_exact(q3.query_id)
        term.expect_exact("label> ")
        term.send("n")
        term.expect_exact("new class (Enter to send, empty to cancel)> ")
        term.send("probe mark")
        term.expect_exact("probe mark")  # echoed as typed
        term.sendline("")
        term.expect_exact(f"{q3.query_id}: labelled probe mark")

        term.expect_exact(q2.query_id)  # the skipped card comes back
        term.expect(r"3(\x1b\[[0-9;]*m)* probe mark")  # the new class: now one key away
        elsewhere = OracleLabel(query_id=q2.query_id, label="fail", labeler="eng-web",
                                labeled_at=q2.created_at)
        produce(kafka_bootstrap, labels_topic, elsewhere)
        term.expect_exact("already answered by eng-web")
        term.expect_exact("Waiting for queries")
        quit_cleanly(term)
    finally:
        term.close()
        term.logfile_read.close()
    assert term.exitstatus == 0
    print(f"terminal transcript: {tmp_path / 'terminal.log'}")

    labels = read_labels(kafka_bootstrap, labels_topic, 3)
    assert [(x.query_id, x.label, x.labeler) for x in labels] == [
        (q1.query_id, "fail", "eng-term"), (q3.query_id, "probe mark", "eng-term"),
        (q2.query_id, "fail", "eng-web")]


def test_two_terminals_never_get_the_same_card(kafka_bootstrap: str,
                                               topics: tuple[str, str, str],
                                               tmp_path: Path, kafka_client: str) -> None:
    requests_topic, labels_topic, _ = topics
    cards = [oracle_request(1, uncertainty=0.9), oracle_request(2, uncertainty=0.8)]
    ids = [card.query_id for card in cards]
    produce(kafka_bootstrap, requests_topic, *cards)
    ann = spawn("eng-ann", kafka_bootstrap, topics, tmp_path / "ann.log", kafka_client)
    bob = spawn("eng-bob", kafka_bootstrap, topics, tmp_path / "bob.log", kafka_client)
    try:
        ann_card = ids[ann.expect_exact(ids)]  # both start together and race for the first
        bob_card = ids[bob.expect_exact(ids)]
        assert ann_card != bob_card
        bob.expect_exact("label> ")
        quit_cleanly(ann)  # ann's card is released ...
        bob.send("2")
        bob.expect_exact(f"{bob_card}: labelled pass")
        bob.expect_exact(ann_card)  # ... and only now reaches bob
        bob.send("1")
        bob.expect_exact(f"{ann_card}: labelled fail")
        quit_cleanly(bob)
    finally:
        for term in (ann, bob):
            term.close()
            term.logfile_read.close()
    assert ann_card not in (tmp_path / "bob.log").read_text().split(bob_card, 1)[0]
    labels = read_labels(kafka_bootstrap, labels_topic, 2)
    assert [(x.query_id, x.labeler) for x in labels] == [(bob_card, "eng-bob"),
                                                         (ann_card, "eng-bob")]


def test_markup_and_escape_sequences_from_a_record_are_shown_as_text(
        kafka_bootstrap: str, topics: tuple[str, str, str], tmp_path: Path,
        kafka_client: str) -> None:
    requests_topic, labels_topic, _ = topics
    base = oracle_request(1)
    record = base.record.model_copy(update={"measurements": {"[/bold]": 1.0,
                                                             "vdd\x1b[2J": 0.9}})
    hostile = base.model_copy(update={"record": record, "predicted": "[/bold]",
                                      "proba": {"[/bold]": 0.6, "pass": 0.4}})
    produce(kafka_bootstrap, requests_topic, hostile)
    log = tmp_path / "terminal.log"
    term = spawn("eng-term", kafka_bootstrap, topics, log, kafka_client)
    try:
        term.expect_exact("vdd␛[2J")  # the escape shown, not obeyed
        term.expect_exact("label> ")
        term.send("1")  # classes in name order: 1 = "[/bold]"
        term.expect_exact(f"{hostile.query_id}: labelled [/bold]")  # and still running
        quit_cleanly(term)
    finally:
        term.close()
        term.logfile_read.close()
    assert term.exitstatus == 0
    assert "\x1b[2J" not in log.read_text()
    labels = read_labels(kafka_bootstrap, labels_topic, 1)
    assert [(x.query_id, x.label) for x in labels] == [(hostile.query_id, "[/bold]")]


def long_card(serial: int, count: int) -> Any:
    base = oracle_request(serial, uncertainty=0.95)
    values = {f"t{n:03d}_vdd": 1.0 + n / 1000 for n in range(count)}
    record = base.record.model_copy(update={"measurements": values})
    return base.model_copy(update={"record": record})


def test_a_long_card_keeps_its_header_on_screen_and_pages_its_measurements(
        kafka_bootstrap: str, topics: tuple[str, str, str], tmp_path: Path,
        kafka_client: str) -> None:
    requests_topic, labels_topic, _ = topics
    rows = 30
    card = long_card(1, 90)
    produce(kafka_bootstrap, requests_topic, card)
    term = spawn("eng-term", kafka_bootstrap, topics, tmp_path / "terminal.log", kafka_client,
                 rows=rows)
    try:
        term.expect_exact(f"╭─ {card.query_id}")
        term.expect_exact("label> ")
        drawn = re.sub(r"\x1b\[[0-9;]*m", "", term.before)  # rich's colours off
        assert "UNCERTAINTY" in drawn and "0.950" in drawn  # header ...
        assert re.search(r"pass\s+█+░*\s+0\.520", drawn)  # ... and the probabilities
        # The card fits the screen: from its top border to the prompt, fewer lines than
        # the terminal has, so the header is still on it when the prompt waits.
        assert drawn.count("\n") < rows - 1, drawn.count("\n")
        first = re.search(r"Measurements 1–(\d+) of 90", drawn)
        assert first is not None
        term.send("]")
        term.expect_exact("UNCERTAINTY")  # the card drawn again, header first ...
        term.expect(r"Measurements (\d+)–\d+ of 90")  # ... with the next page
        assert int(term.match.group(1)) == int(first.group(1)) + 1
        assert "t000_vdd" not in term.before and f"t{int(first.group(1)):03d}_vdd" in term.before
        term.expect_exact("label> ")
        term.send("2")  # classes in name order: 2 = pass
        term.expect_exact(f"{card.query_id}: labelled pass")
        term.expect_exact("Waiting for queries")
        quit_cleanly(term)
    finally:
        term.close()
        term.logfile_read.close()
    assert term.exitstatus == 0
    labels = read_labels(kafka_bootstrap, labels_topic, 1)
    assert [(x.query_id, x.label) for x in labels] == [(card.query_id, "pass")]


def test_ctrl_c_leaves_the_terminal_in_the_mode_it_had(
        kafka_bootstrap: str, topics: tuple[str, str, str], tmp_path: Path,
        kafka_client: str) -> None:
    requests_topic, labels_topic, _ = topics
    card = oracle_request(1)
    produce(kafka_bootstrap, requests_topic, card)
    term = spawn("eng-term", kafka_bootstrap, topics, tmp_path / "terminal.log", kafka_client,
                 then="stty -a")
    try:
        term.expect_exact("label> ")
        term.sendintr()  # Ctrl-C while a card waits for its key
        term.expect_exact("Bye.")
        term.expect_exact("exit=0")
        term.expect(pexpect.EOF)
        modes = term.before.split()
    finally:
        term.close()
        term.logfile_read.close()
    # Line editing and echo are back on (cbreak mode had them off).
    assert "icanon" in modes and "-icanon" not in modes
    assert "echo" in modes and "-echo" not in modes
    assert read_labels(kafka_bootstrap, labels_topic, 1, timeout_s=2) == []
