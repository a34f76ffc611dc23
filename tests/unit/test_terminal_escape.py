"""Whatever a record holds, the terminal labeller shows it as text: rich markup is not
read (``[/bold]`` used to end the program) and escape sequences never reach the
terminal (``\\x1b[2J`` used to clear it)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from rich.console import Console

from consumers.oracle.terminal.labeller import TerminalLabeller
from consumers.oracle.terminal.safe_text import printable
from consumers.oracle.terminal.view import card_panel, status_line
from stream_al.codec import encode
from stream_al.records import OracleLabel, OracleRequest
from tests.desk_support import RecordingDesk, ScriptedLines, Step
from tests.desk_support import oracle_request as ask

CLEAR_SCREEN = "\x1b[2J"
RETITLE = "\x1b]0;pwned\x07"
HOSTILE = ["[/bold]", f"vdd{CLEAR_SCREEN}", "[red]x[/red]", f"t{RETITLE}", "a\x9b2Jb",
           "left\u202eright", ":thumbs_up:", "[link=file:///etc/passwd]open[/link]"]


def hostile_request() -> OracleRequest:
    """A request whose every kind of record string is one of HOSTILE."""
    base = ask(1)
    record = base.record.model_copy(update={
        "measurements": {name: 1.5 for name in HOSTILE},
        "product": "[/bold]", "tester_id": f"T{CLEAR_SCREEN}", "lot_id": "[bold]L1"})
    return base.model_copy(update={
        "record": record, "model_key": f"PMIC{CLEAR_SCREEN}[/]",
        "proba": {"[/bold]": 0.6, f"pass{RETITLE}": 0.4}, "predicted": "[/bold]"})


def terminal_run(desk: RecordingDesk, *steps: Step, labeler: str = "eng-t") -> str:
    """The labeller's whole output on a colour terminal (escape codes and all)."""
    out = io.StringIO()
    console = Console(file=out, width=200, color_system="truecolor", force_terminal=True)
    assert TerminalLabeller(desk, labeler, console, ScriptedLines(*steps)).run() == 0
    return out.getvalue()


def assert_harmless(output: str) -> None:
    """Only rich's own style codes (CSI ... m) reach the terminal."""
    plain = output.replace("\x1b[0m", "")
    for code in ("\x1b[2J", "\x1b]", "\x07", "\x9b", "\u202e"):
        assert code not in plain, repr(code)
    leftover = re.sub(r"\x1b\[[0-9;]*m", "", output)
    assert "\x1b" not in leftover


@pytest.mark.parametrize("text, shown", [
    (CLEAR_SCREEN, "␛[2J"), (RETITLE, "␛]0;pwned␇"), ("a\nb\tc", "a␊b␉c"),
    ("a\x9b2J", "a\ufffd2J"), ("\x7f", "␡"), ("ab\u202ecd\u2066", "ab\ufffdcd\ufffd"),
    ("[/bold] ünïcode ✓ 測試", "[/bold] ünïcode ✓ 測試"),
])
def test_printable_shows_every_control_character_as_a_visible_stand_in(text: str,
                                                                       shown: str) -> None:
    assert printable(text) == shown


def test_a_card_of_markup_and_escape_sequences_is_drawn_as_text() -> None:
    desk = RecordingDesk()
    desk.feed(hostile_request())
    card = desk.view("h", "eng-t")["card"]
    out = io.StringIO()
    Console(file=out, width=300, color_system=None).print(card_panel(card))
    shown = out.getvalue()
    for name in HOSTILE:
        assert printable(name) in shown, name
    assert "\x1b" not in shown
    assert "[/bold]" in shown and "PMIC␛[2J[/]" in shown and ":thumbs_up:" in shown


def test_the_labeller_labels_a_hostile_card_without_crashing_or_leaking_codes() -> None:
    desk = RecordingDesk()
    request = hostile_request()
    desk.feed(request)
    output = terminal_run(desk, "1", "q")  # classes in name order: 1 = "[/bold]"
    assert [(x.query_id, x.label) for x in desk.sent] == [(request.query_id, "[/bold]")]
    assert_harmless(output)
    assert "vdd␛[2J" in output and "labelled [/bold]" in output


def test_names_and_reasons_from_elsewhere_are_shown_as_text() -> None:
    desk = RecordingDesk()
    request = ask(1)
    desk.feed(request)
    rogue = f"[/]{RETITLE}{CLEAR_SCREEN}"
    elsewhere = OracleLabel(query_id=request.query_id, label="fail", labeler=rogue,
                            labeled_at=datetime.now(UTC))
    output = terminal_run(desk, lambda: desk.state.read_label(encode(elsewhere), "test"), "q",
                          labeler="[/bold]")
    assert_harmless(output)
    assert "already answered by [/]␛]0;pwned␇␛[2J" in output
    assert "Labelling as" in output and "[/bold]" in output


def test_a_problem_quoting_bytes_is_printable_on_the_status_line() -> None:
    desk = RecordingDesk()
    desk.state.set_problem(f"Kafka: bad frame {CLEAR_SCREEN}[/]")
    line = status_line(desk.view("h", "eng-t")["status"])
    assert "\x1b" not in line and "␛[2J[/]" in line
