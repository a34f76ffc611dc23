"""The desk's card drawn for a terminal with rich: the same fields as the web page.

A card never grows taller than the terminal: the measurements are shown a page at a time
(``fitted_card``), so the header, the probabilities and the choices stay on screen however
many tests a record has.

Every string from a record (or from Kafka) is drawn as ``safe`` Text, never as a markup
string: see safe_text.py for what that keeps off the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from consumers.oracle.desk.cards import JSON
from consumers.oracle.terminal.safe_text import printable, safe

_BAR_WIDTH: Final = 20
_MAX_MAP: Final = 40  # wider grids are not drawn: they would not fit beside the tables
_REASON_STYLE: Final = {"novelty": "bold red", "warmup": "bold yellow",
                        "uncertainty": "bold blue", "audit": "bold"}
#: Lines a screen keeps besides the card: the prompt and the line answering it.
_BESIDE_CARD: Final = 3
_MIN_ROWS: Final = 3
_LABEL_STYLES: Final = ("red", "green", "magenta", "yellow", "cyan", "blue", "white",
                        "bright_red", "bright_green")


def card_panel(card: JSON, page: int = 0, rows: int | None = None, wafer: bool = True
               ) -> Panel:
    """The whole card: header line, record | measurements | model and wafer, choices;
    with ``rows``, only page ``page`` of the measurements."""
    header = Text.assemble(
        safe(card["reason"].upper(), _REASON_STYLE.get(card["reason"], "bold")),
        "  ", safe(card["model_key"]),
        f"  uncertainty {card['uncertainty']:.3f} (threshold {card['threshold']:g})  predicted ",
        safe(card["predicted"] or "—", "bold"),
        f"  asked {_age(card['age_s'])} ago, expires in {_age(card['expires_in_s'])}")
    body = Table.grid(padding=(0, 3))
    model: list[RenderableType] = [_proba(card)]
    if card.get("influences"):
        model += [Text("\nMost influential", "italic"), _influences(card["influences"])]
    if wafer and card["wafer_map"]:
        model += [Text("\nWafer", "italic"), wafer_text(card["wafer_map"], card["classes"])]
    left: list[RenderableType] = [_pairs("Record", card["fields"])]
    if card.get("outcome"):
        left.append(_outcome(card["outcome"]))
    measured, paging = _measurements(card, page, rows)
    body.add_row(Group(*left), measured, Group(*model))
    return Panel(Group(header, Text(""), body, Text(""), choices(card["classes"], paging)),
                 title=safe(card["query_id"]), title_align="left", expand=False)


def fitted_card(console: Console, card: JSON, page: int) -> tuple[Panel, int]:
    """The card as tall as the terminal allows (fewer measurements a page, then no wafer
    map, until it fits); the panel and the number of pages."""
    room = console.size.height - _BESIDE_CARD
    total = max(1, len(card["measurements"]))
    for wafer in (True, False):
        rows = max(_MIN_ROWS, min(total, room))
        while True:
            pages = -(-total // rows)
            panel = card_panel(card, min(page, pages - 1), rows, wafer)
            if len(console.render_lines(panel, pad=False)) <= room or rows == _MIN_ROWS:
                break
            rows = max(_MIN_ROWS, rows - max(1, rows // 4))
        if len(console.render_lines(panel, pad=False)) <= room:
            return panel, pages
    return panel, pages


def choices(classes: list[str], paging: str | None = None) -> Text:
    text = Text()
    for number, name in enumerate(classes[:9], 1):
        text.append(f"{number}", "bold cyan").append(f" {printable(name)}   ")
    text.append("n", "bold cyan").append(" new class   ").append("s", "bold cyan") \
        .append(" skip   ").append("q", "bold cyan").append(" quit")
    if paging:
        text.append("   ] [", "bold cyan").append(f" {paging}")
    return text


def status_line(status: JSON) -> str:
    """The counts and any problem, in one line (the problem made printable: it quotes
    Kafka's errors, which may quote a topic's bytes)."""
    parts = [f"{status['open']} open" if status["caught_up"] else "reading the topics…",
             f"{status['claimed_by_others']} with others",
             f"{status['labelled_here']} labelled here",
             f"{status['answered_elsewhere']} answered elsewhere", f"{status['expired']} expired"]
    if status["malformed_requests"]:
        parts.append(f"{status['malformed_requests']} malformed requests skipped")
    if status.get("kafka_down"):
        parts.append(status["kafka_down"])
    if status["problem"]:
        parts.append(printable(status["problem"]))
    return " · ".join(parts)


def wafer_text(wafer: JSON, classes: Sequence[str] = ()) -> Text:
    """A character map of the product's die grid: · die, o queried on this wafer, a
    digit: labelled with that key's class (+ another class), X here."""
    x0, x1, y0, y1 = wafer["min_x"], wafer["max_x"], wafer["min_y"], wafer["max_y"]
    if x1 - x0 >= _MAX_MAP or y1 - y0 >= _MAX_MAP:
        return safe(f"die {wafer['x']}, {wafer['y']}")
    others = {(die[0], die[1]): (die[2] if len(die) > 2 else None) for die in wafer["others"]}
    text = Text()
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            if (x, y) == (wafer["x"], wafer["y"]):
                text.append("X", "bold reverse")
            elif (x, y) in others:
                label = others[(x, y)]
                if label is None:
                    text.append("o", "yellow")
                elif label in classes[:9]:
                    index = list(classes).index(label)
                    text.append(str(index + 1), f"bold {_LABEL_STYLES[index]}")
                else:
                    text.append("+", "bold")
            else:
                text.append("·", "dim")
        text.append("\n")
    return text


def _measurements(card: JSON, page: int, rows: int | None) -> tuple[Table, str | None]:
    """One page of the measurements, and which ones it shows when there are more."""
    values: list[JSON] = card["measurements"]
    total = len(values)
    paging = None
    if rows is not None and total > rows:
        start = page * rows
        values = values[start:start + rows]
        paging = f"Measurements {start + 1}–{start + len(values)} of {total}"
    table = Table(title="Measurements", title_justify="left", show_header=False, box=None,
                  padding=(0, 1))
    table.add_column(no_wrap=True, max_width=40, overflow="ellipsis")
    table.add_column(no_wrap=True, justify="right")
    table.add_column(no_wrap=True, style="dim")
    table.add_column(no_wrap=True, justify="right")
    for row in values:
        value = safe(_value(row["value"]))
        if row.get("out"):
            value = Text.assemble(value, " ▼" if row["out"] == "low" else " ▲",
                                  style="bold red")
        table.add_row(safe(row["name"]), value, safe(_limits(row)), _z(row.get("z")))
    return table, paging


def _limits(row: JSON) -> str:
    lo, hi, units = row.get("lo"), row.get("hi"), row.get("units")
    unit = f" {units}" if units else ""
    if lo is None and hi is None:
        return units or ""
    if lo is None:
        return f"≤ {_value(hi)}{unit}"
    if hi is None:
        return f"≥ {_value(lo)}{unit}"
    return f"{_value(lo)}…{_value(hi)}{unit}"


def _z(z: float | None) -> Text:
    if z is None:
        return Text("")
    style = "bold red" if abs(z) >= 3 else "yellow" if abs(z) >= 2 else "dim"
    return Text(f"z {z:+.1f}", style)


def _outcome(outcome: JSON) -> Table:
    table = Table(title="Outcome", title_justify="left", show_header=False, box=None,
                  padding=(0, 1))
    for key, name in (("hard_bin", "hard bin"), ("soft_bin", "soft bin")):
        if key in outcome:
            table.add_row(name, safe(outcome[key]))
    if outcome.get("retest"):
        table.add_row("retest", "yes")
    if outcome.get("no_parametric"):
        table.add_row("parametric", "none")
    if outcome.get("failed_tests") is not None:
        names = outcome["failed_tests"]
        shown = ", ".join(printable(name) for name in names[:5])
        more = outcome["failed_tests_total"] - min(len(names), 5)
        table.add_row(Text("failed", "red"),
                      Text(shown + (f" (+{more})" if more > 0 else ""), "red"))
    return table


def _influences(items: list[JSON]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 1))
    for item in items:
        if item.get("test"):  # a tree's path step: the test taken, this record's value
            value = "missing" if item["weight"] is None else f"{item['weight']:.4g}"
            table.add_row(safe(item["feature"]), safe(f"{item['test']} ({value})"))
        else:
            table.add_row(safe(item["feature"]), Text(f"{item['weight']:+.3g}"))
    return table


def _pairs(title: str, rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 1))
    for name, value in rows:
        table.add_row(safe(name), safe(_value(value)))
    return table


def _proba(card: JSON) -> RenderableType:
    if not card["proba"]:
        return Text.assemble(("Model\n", "italic"), ("no prediction yet (warming up)", "yellow"))
    table = Table(title="Model", title_justify="left", show_header=False, box=None)
    for name, p in card["proba"]:
        filled = round(p * _BAR_WIDTH)
        bar = Text("█" * filled, "blue").append("░" * (_BAR_WIDTH - filled), "dim")
        style = "bold" if name == card["predicted"] else ""
        table.add_row(safe(name, style), bar, Text(f"{p:.3f}"))
    return table


def _value(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _age(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s} s" if s < 90 else f"{round(s / 60)} min" if s < 5400 else f"{s / 3600:.1f} h"
