"""The desk's card drawn for a terminal with rich: the same fields as the web page.

Every string from a record (or from Kafka) is drawn as ``safe`` Text, never as a markup
string: see safe_text.py for what that keeps off the terminal.
"""

from __future__ import annotations

from typing import Any, Final

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from consumers.oracle.desk.cards import JSON
from consumers.oracle.terminal.safe_text import printable, safe

_BAR_WIDTH: Final = 20
_MAX_MAP: Final = 40  # wider grids are not drawn: they would not fit beside the tables
_REASON_STYLE: Final = {"novelty": "bold red", "warmup": "bold yellow",
                        "uncertainty": "bold blue", "audit": "bold"}


def card_panel(card: JSON) -> Panel:
    """The whole card: header line, record | measurements | model and wafer, choices."""
    header = Text.assemble(
        safe(card["reason"].upper(), _REASON_STYLE.get(card["reason"], "bold")),
        "  ", safe(card["model_key"]),
        f"  uncertainty {card['uncertainty']:.3f} (threshold {card['threshold']:g})  predicted ",
        safe(card["predicted"] or "—", "bold"),
        f"  asked {_age(card['age_s'])} ago, expires in {_age(card['expires_in_s'])}")
    body = Table.grid(padding=(0, 3))
    model: list[RenderableType] = [_proba(card)]
    if card["wafer_map"]:
        model += [Text("\nWafer", "italic"), wafer_text(card["wafer_map"])]
    body.add_row(_pairs("Record", card["fields"]), _pairs("Measurements", card["measurements"]),
                 Group(*model))
    return Panel(Group(header, Text(""), body, Text(""), choices(card["classes"])),
                 title=safe(card["query_id"]), title_align="left", expand=False)


def choices(classes: list[str]) -> Text:
    text = Text()
    for number, name in enumerate(classes[:9], 1):
        text.append(f"{number}", "bold cyan").append(f" {printable(name)}   ")
    return text.append("n", "bold cyan").append(" new class   ").append("s", "bold cyan") \
        .append(" skip   ").append("q", "bold cyan").append(" quit")


def status_line(status: JSON) -> str:
    """The counts and any problem, in one line (the problem made printable: it quotes
    Kafka's errors, which may quote a topic's bytes)."""
    parts = [f"{status['open']} open" if status["caught_up"] else "reading the topics…",
             f"{status['claimed_by_others']} with others",
             f"{status['labelled_here']} labelled here",
             f"{status['answered_elsewhere']} answered elsewhere", f"{status['expired']} expired"]
    if status["malformed_requests"]:
        parts.append(f"{status['malformed_requests']} malformed requests skipped")
    if status["problem"]:
        parts.append(printable(status["problem"]))
    return " · ".join(parts)


def wafer_text(wafer: JSON) -> Text:
    """A character map of the product's die grid: · die, o queried on this wafer, X here."""
    x0, x1, y0, y1 = wafer["min_x"], wafer["max_x"], wafer["min_y"], wafer["max_y"]
    if x1 - x0 >= _MAX_MAP or y1 - y0 >= _MAX_MAP:
        return safe(f"die {wafer['x']}, {wafer['y']}")
    others = {tuple(die) for die in wafer["others"]}
    text = Text()
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            if (x, y) == (wafer["x"], wafer["y"]):
                text.append("X", "bold red")
            elif (x, y) in others:
                text.append("o", "yellow")
            else:
                text.append("·", "dim")
        text.append("\n")
    return text


def _pairs(title: str, rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 1))
    for name, value in rows:
        table.add_row(safe(name), safe(_value(value)))
    return table


def _proba(card: JSON) -> Table:
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
