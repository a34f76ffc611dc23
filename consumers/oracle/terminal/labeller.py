"""``stream-al oracle label``: the desk in a terminal, for a shell on the floor.

It shows one card at a time and reads a line: a class number, a class name, ``n`` for a
new class, ``s`` to skip, ``q`` to quit. While it waits for input it keeps watching the
topics, so a card answered elsewhere (or expired) is dropped at once, not refused later.

What it prints of records, of other people's names and of Kafka's errors is ``safe``
Text (safe_text.py): shown as typed, never read as markup or terminal control.
"""

from __future__ import annotations

import os
import secrets
import select
import sys
from typing import Final, Protocol

from rich.console import Console
from rich.text import Text

from consumers.oracle.desk.cards import JSON
from consumers.oracle.desk.service import DeskService
from consumers.oracle.terminal.safe_text import safe
from consumers.oracle.terminal.view import card_panel, status_line
from stream_al.desk_queue import LabelRefused
from stream_al.errors import BrokerUnavailable

_TICK_S: Final = 0.5
_QUIT: Final = frozenset(("q", "quit", "exit"))


class Lines(Protocol):
    def poll(self, timeout_s: float) -> str | None:
        """A line typed within ``timeout_s`` (stripped), else None; EOFError at the end."""


class FileLines:
    """Lines from a file descriptor, read without blocking past the timeout."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._buffer = b""

    def poll(self, timeout_s: float) -> str | None:
        if b"\n" not in self._buffer:
            ready, _, _ = select.select([self.fd], [], [], timeout_s)
            if not ready:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise EOFError
            self._buffer += chunk
            if b"\n" not in self._buffer:
                return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace").strip()


class TerminalLabeller:
    """One person at one terminal: one holder, so its card is hidden from everyone else."""

    def __init__(self, service: DeskService, labeler: str, console: Console, lines: Lines
                 ) -> None:
        self.service, self.labeler = service, labeler
        self.console, self.lines = console, lines
        self.holder = f"terminal-{secrets.token_hex(6)}"

    def run(self) -> int:
        """Label until ``q``, end of input or Ctrl-C; the exit code."""
        self.console.print(Text.assemble("Labelling as ", safe(self.labeler, "bold"), "."))
        try:
            while self._step():
                pass
        except (KeyboardInterrupt, EOFError):
            self.console.print()
        finally:
            self.service.release(self.holder)
        self.console.print("Bye.")
        return 0

    def _step(self) -> bool:
        view = self.service.view(self.holder, self.labeler)
        if view["card"] is None:
            return self._wait(view["status"])
        self.console.print(card_panel(view["card"]))
        return self._ask(view["card"])

    def _wait(self, status: JSON) -> bool:
        self.console.print(Text(status_line(status), "dim"))
        self.console.print("Waiting for queries… (q and Enter to quit)")
        while True:
            line = self.lines.poll(_TICK_S)
            if line is not None and line.lower() in _QUIT:
                return False
            if self.service.current(self.holder, self.labeler) is not None:
                return True

    def _ask(self, card: JSON) -> bool:
        while True:
            line = self._read(card, "label> ")
            if line is None:
                return True
            choice = line.lower()
            if choice in _QUIT:
                return False
            if choice in ("s", "skip"):
                self.service.skip(card["query_id"], self.holder)
                self.console.print(Text.assemble("Skipped ", safe(card["query_id"]), "."))
                return True
            label = self._label_for(card, line)
            if label is not None and self._send(card["query_id"], label):
                return True

    def _label_for(self, card: JSON, line: str) -> str | None:
        classes: list[str] = card["classes"]
        if line.isdigit() and 1 <= int(line) <= min(len(classes), 9):
            return classes[int(line) - 1]
        if line in classes:
            return line
        if line.lower() in ("n", "new"):
            name = self._read(card, "new class> ")
            return name or None
        if line:
            self.console.print(f"Type 1–{min(len(classes), 9)}, a class name, n, s or q.")
        return None

    def _read(self, card: JSON, prompt: str) -> str | None:
        """A typed line, or None once the card is no longer this terminal's to answer."""
        self.console.print(prompt, end="")
        while True:
            line = self.lines.poll(_TICK_S)
            if line is not None:
                return line
            why = self.service.refusal(card["query_id"], self.holder)
            if why is not None:
                self.console.print(Text.assemble("\n", safe(why, "yellow"), ": next card."))
                return None

    def _send(self, query_id: str, label: str) -> bool:
        """True when this card is done with (labelled, or refused for good)."""
        try:
            sent = self.service.answer(query_id, label, self.holder, self.labeler)
        except LabelRefused as refused:
            self.console.print(Text.assemble(("Refused: ", "red"), safe(refused.reason)))
            return True
        except BrokerUnavailable as error:
            self.console.print(Text.assemble(("Not sent: ", "red"), safe(error)))
            return False
        self.console.print(Text.assemble(("✓ ", "green"), safe(sent.query_id), ": labelled ",
                                         safe(sent.label)))
        return True
