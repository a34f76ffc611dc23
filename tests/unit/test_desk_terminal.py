"""The terminal labeller's dialogue without a broker or a terminal: scripted lines in,
recorded labels and printed text out (the pty round trip is the integration test's job)."""

from __future__ import annotations

import io
import os
import pty
import re
import termios
from datetime import UTC, datetime

import pytest
from rich.console import Console

from consumers.oracle.terminal.labeller import FileLines, TerminalKeys, TerminalLabeller
from consumers.oracle.terminal.view import card_panel, fitted_card, wafer_text
from stream_al.codec import encode
from stream_al.records import OracleLabel, OracleRequest, ParametricRecord
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
    assert "Press 1–2, n (new class), s (skip), ] [ (more measurements) or q." in run(
        desk, "7", "q")


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


def long_request(count: int = 80) -> OracleRequest:
    base = ask(1)
    values = {f"t{n:03d}_vdd": 1.0 + n / 1000 for n in range(count)}
    record = base.record.model_copy(update={"measurements": values})
    return base.model_copy(update={"record": record})


def test_a_long_card_is_paged_so_header_probabilities_and_choices_fit_the_screen() -> None:
    desk = RecordingDesk()
    desk.feed(long_request())
    card = desk.view("h", "eng-t")["card"]
    out = io.StringIO()
    console = Console(file=out, width=160, height=30, color_system=None)
    panel, pages = fitted_card(console, card, 0)
    console.print(panel)
    first = out.getvalue().splitlines()
    assert len(first) <= 30 - 3  # room left for the prompt and its answer
    assert pages > 1
    text = "\n".join(first)
    assert "UNCERTAINTY" in text and "pass" in text and "1 fail" in text and "t000_vdd" in text
    assert f"of {len(card['measurements'])}" in text
    last, _ = fitted_card(console, card, pages - 1)
    shown = io.StringIO()
    Console(file=shown, width=160, color_system=None).print(last)
    assert "t079_vdd" in shown.getvalue() and "t000_vdd" not in shown.getvalue()
    assert "UNCERTAINTY" in shown.getvalue()


def test_paging_keys_move_through_the_measurements_and_a_digit_still_answers() -> None:
    desk = RecordingDesk()
    desk.feed(long_request())
    out = io.StringIO()
    console = Console(file=out, width=160, height=30, color_system=None, highlight=False)
    keys = ScriptedLines("]", "]", "[", "2", "q")
    assert TerminalLabeller(desk, "eng-t", console, keys).run() == 0
    pages = re.findall(r"Measurements (\d+)–\d+ of 80", out.getvalue())
    assert pages[0] == "1" and int(pages[1]) > 1 and int(pages[2]) > int(pages[1])
    assert pages[3] == pages[1]  # "[" went back one page
    assert [(x.label, x.labeler) for x in desk.sent] == [("pass", "eng-t")]


def test_a_warm_up_card_says_no_prediction_yet_and_limits_and_z_scores_are_shown() -> None:
    warm = ask(1, reason="warmup").model_copy(update={"proba": {}, "predicted": None})
    record = ParametricRecord.model_validate(warm.record.model_dump(mode="json") | {
        "limits": {"vdd_core_v": {"lo": 0.95, "hi": 1.05, "units": "V"}}, "hard_bin": 5})
    desk = RecordingDesk()
    desk.feed(warm.model_copy(update={"record": record}))
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(
        card_panel(desk.view("h", "eng-t")["card"]))
    shown = out.getvalue()
    assert "no prediction yet" in shown and "0.000" not in shown
    assert "0.9012 ▼" in shown and "0.95…1.05 V" in shown
    assert "hard bin" in shown


def test_neighbours_labels_show_as_their_class_key_on_the_wafer_map() -> None:
    text = wafer_text({"x": 1, "y": 0, "min_x": 0, "max_x": 2, "min_y": 0, "max_y": 1,
                       "others": [[0, 1, "pass"], [2, 1, "fail"], [2, 0, None]]},
                      ["fail", "pass"]).plain
    assert text == "·Xo\n2·1\n"


def test_no_waiting_line_while_the_next_card_is_on_its_way() -> None:
    desk = RecordingDesk()
    a, b = ask(1, uncertainty=0.9), ask(2, uncertainty=0.8)
    desk.feed(a, b)
    shown = run(desk, "1", "2", "q")
    assert shown.count("Waiting for queries") == 1  # only after the last card
    assert shown.index("Waiting for queries") > shown.index(f"{b.query_id}: labelled pass")


def test_terminal_keys_read_one_key_without_enter_and_restore_the_terminal() -> None:
    controller, terminal = pty.openpty()
    try:
        before = termios.tcgetattr(terminal)
        with TerminalKeys(terminal) as keys:
            assert not termios.tcgetattr(terminal)[3] & termios.ICANON  # cbreak: no Enter
            os.write(controller, b"1s\x1b[A")
            assert [keys.poll(1), keys.poll(1), keys.poll(0.1)] == ["1", "s", None]
        assert termios.tcgetattr(terminal) == before
        with pytest.raises(KeyboardInterrupt), TerminalKeys(terminal):
            raise KeyboardInterrupt  # Ctrl-C: the mode is restored on the way out too
        assert termios.tcgetattr(terminal) == before
    finally:
        os.close(controller)
        os.close(terminal)


def test_a_trees_path_shows_each_test_taken_with_the_records_value() -> None:
    from stream_al.records import Influence

    steps = [Influence(feature="vdd_core_v", weight=0.9012, test="≤ 0.93"),
             Influence(feature="idd_ma", weight=None, test="> 12.5"),
             Influence(feature="leak_ua", weight=-0.25)]
    desk = RecordingDesk()
    desk.feed(ask(1).model_copy(update={"influences": steps}))
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(
        card_panel(desk.view("h", "eng-t")["card"]))
    shown = out.getvalue()
    assert re.search(r"vdd_core_v\s+≤ 0\.93 \(0\.9012\)", shown), shown
    assert re.search(r"idd_ma\s+> 12\.5 \(missing\)", shown), shown
    assert re.search(r"leak_ua\s+-0\.25", shown), shown  # a linear weight, signed
