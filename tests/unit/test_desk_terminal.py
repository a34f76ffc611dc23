"""The terminal labeller's dialogue without a broker or a terminal: scripted lines in,
recorded labels and printed text out (the pty round trip is the integration test's job)."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

import pytest
from rich.console import Console

from consumers.oracle.terminal.labeller import FileLines, TerminalLabeller
from consumers.oracle.terminal.view import wafer_text
from stream_al.codec import encode
from stream_al.records import OracleLabel
from tests.desk_support import RecordingDesk, ScriptedLines, Step
from tests.desk_support import oracle_request as ask


def run(desk: RecordingDesk, *steps: Step) -> str:
    out = io.StringIO()
    console = Console(file=out, width=140, highlight=False, color_system=None)
    assert TerminalLabeller(desk, "eng-t", console, ScriptedLines(*steps)).run() == 0
    return out.getvalue()


def test_number_name_and_new_class_each_send_one_signed_label() -> None:
    desk = RecordingDesk()
    a, b, c = ask(1, uncertainty=0.9), ask(2, uncertainty=0.8), ask(3, uncertainty=0.7)
    desk.feed(a, b, c)
    shown = run(desk, "1", "pass", "n", "scratch", "q")
    assert [(x.query_id, x.label, x.labeler) for x in desk.sent] == [
        (a.query_id, "fail", "eng-t"), (b.query_id, "pass", "eng-t"),
        (c.query_id, "scratch", "eng-t")]
    assert f"{c.query_id}: labelled scratch" in shown


def test_skip_then_quit_leaves_the_card_for_someone_else() -> None:
    desk = RecordingDesk()
    a, b = ask(1, uncertainty=0.9), ask(2, uncertainty=0.8)
    desk.feed(a, b)
    shown = run(desk, "s", "q")
    assert f"Skipped {a.query_id}." in shown
    assert desk.sent == []
    view = desk.view("someone", "bob")
    assert view["card"]["query_id"] == a.query_id  # released on quit, first in line again


def test_a_card_answered_elsewhere_while_shown_is_dropped() -> None:
    desk = RecordingDesk()
    a = ask(1)
    desk.feed(a)
    elsewhere = OracleLabel(query_id=a.query_id, label="fail", labeler="eng-web",
                            labeled_at=datetime.now(UTC))
    shown = run(desk, lambda: desk.state.read_label(encode(elsewhere), "test"), "q")
    assert "already answered by eng-web" in shown
    assert "Waiting for queries" in shown
    assert desk.sent == []


def test_a_wrong_choice_explains_the_keys() -> None:
    desk = RecordingDesk()
    desk.feed(ask(1))
    assert "Type 1–2, a class name, n, s or q." in run(desk, "7", "q")


def test_the_wafer_map_marks_the_die_and_its_neighbours() -> None:
    text = wafer_text({"x": 1, "y": 0, "min_x": 0, "max_x": 2, "min_y": 0, "max_y": 1,
                       "others": [[0, 1]]}).plain
    assert text == "·X·\no··\n"


def test_file_lines_split_what_arrives_in_one_read() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"1\nn\n")
    os.close(write_end)
    lines = FileLines(read_end)
    try:
        assert [lines.poll(1), lines.poll(1)] == ["1", "n"]
        with pytest.raises(EOFError):
            lines.poll(1)
    finally:
        os.close(read_end)
