"""``stream-al oracle label``: the desk in a terminal, for a shell on the floor.

It shows one card at a time and answers on one keypress, no Enter: a class number, ``n``
for a new class (then a line: its name), ``s`` to skip, ``q`` to quit, ``]`` and ``[`` to
page through a long card's measurements (the header and probabilities stay on screen).
The terminal is put in cbreak mode for this and restored on every exit, Ctrl-C included.
From a pipe rather than a terminal it reads lines instead (a number or a class name).
While it waits for input it keeps watching the topics, so a card answered elsewhere (or
expired) is dropped at once, not refused later.

What it prints of records, of other people's names and of Kafka's errors is ``safe``
Text (safe_text.py): shown as typed, never read as markup or terminal control.
"""

from __future__ import annotations

import codecs
import os
import select
import sys
import termios
import tty
from types import TracebackType
from typing import Final, Protocol

from rich.console import Console
from rich.text import Text

from consumers.oracle.desk.cards import JSON
from consumers.oracle.desk.service import DeskService
from consumers.oracle.terminal.safe_text import safe
from consumers.oracle.terminal.view import fitted_card, status_line
from stream_al.desk_queue import LabelRefused
from stream_al.errors import BrokerUnavailable

_TICK_S: Final = 0.5
_QUIT: Final = frozenset(("q", "quit", "exit"))
_NEXT_PAGE: Final = frozenset(("]", " "))
_PREVIOUS_PAGE: Final = frozenset(("[",))


class Keys(Protocol):
    def poll(self, timeout_s: float) -> str | None:
        """One answer typed within ``timeout_s`` (a key, or from a pipe a stripped
        line), else None; EOFError at the end of input."""

    def poll_line(self, timeout_s: float) -> str | None:
        """A whole typed line (a new class's name), else None; EOFError at the end."""


class FileLines:
    """Lines from a file descriptor (a pipe), read without blocking past the timeout."""

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

    poll_line = poll


class TerminalKeys:
    """Single keypresses from a terminal: cbreak mode (no Enter, no echo) while in use,
    the terminal's own mode back when done. Ctrl-C still interrupts (ISIG stays on)."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._saved = termios.tcgetattr(self.fd)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self._line = ""

    def __enter__(self) -> TerminalKeys:
        tty.setcbreak(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def poll(self, timeout_s: float) -> str | None:
        if not self._pending and not self._read(timeout_s):
            return None
        key, self._pending = self._pending[:1], self._pending[1:]
        if key == "\x1b":  # an arrow or function key: its sequence means nothing here
            self._pending = ""
            return None
        return None if key in ("\r", "\n") else key

    def poll_line(self, timeout_s: float) -> str | None:
        """A line, echoed as it is typed (backspace works), ended by Enter."""
        if not self._pending and not self._read(timeout_s):
            return None
        while self._pending:
            key, self._pending = self._pending[0], self._pending[1:]
            if key in ("\r", "\n"):
                line, self._line = self._line, ""
                os.write(sys.stdout.fileno(), b"\r\n")
                return line.strip()
            if key in ("\x7f", "\b"):
                if self._line:
                    self._line = self._line[:-1]
                    os.write(sys.stdout.fileno(), b"\b \b")
            elif key.isprintable():
                self._line += key
                os.write(sys.stdout.fileno(), key.encode())
        return None

    def _read(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        if not ready:
            return False
        chunk = os.read(self.fd, 1024)
        if not chunk:
            raise EOFError
        self._pending += self._decoder.decode(chunk)
        return bool(self._pending)


class TerminalLabeller:
    """One person at one terminal. Its holder is the person's (``holder_for``), so the
    card is hidden from everyone else, and shared with that person's desk tabs."""

    def __init__(self, service: DeskService, labeler: str, console: Console, keys: Keys
                 ) -> None:
        self.service, self.labeler = service, labeler
        self.console, self.keys = console, keys
        self.holder = service.holder_for(labeler)
        self._said: str | None = None  # what the wait last said, so it is said once

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
            return self._wait(view)
        self._said = None
        return self._ask(view["card"])

    def _wait(self, view: JSON) -> bool:
        # "Waiting" is said only when nothing is coming: not while a claim on a queued
        # card is on its way (its card follows at once), and once per wait.
        status = view["status"]
        if status["kafka_down"]:
            saying, idle = status["kafka_down"], True
        elif not status["caught_up"]:
            saying, idle = "Reading the topics…", True
        else:
            idle = not view["claiming"] and view["queue_size"] == 0
            saying = "Waiting for queries… (q to quit)" if idle else None
        if saying is not None and saying != self._said:
            self.console.print(Text(status_line(status), "dim"))
            self.console.print(safe(saying))
            self._said = saying
        while True:
            key = self.keys.poll(_TICK_S if idle else 0.05)
            if key is not None and key.lower() in _QUIT:
                return False
            if not idle or self.service.current(self.holder, self.labeler) is not None:
                return True

    def _ask(self, card: JSON) -> bool:
        page = 0
        pages = self._draw(card, page)
        while True:
            key = self._read(card, self.keys.poll)
            if key is None:
                return True
            choice = key.lower()
            if choice in _QUIT:
                return False
            if key in _NEXT_PAGE or key in _PREVIOUS_PAGE:
                step = 1 if key in _NEXT_PAGE else -1
                page = min(max(page + step, 0), pages - 1)
                self.console.print()
                self._draw(card, page)
                continue
            if choice in ("s", "skip"):
                self.service.skip(card["query_id"], self.holder)
                self.console.print(Text.assemble("Skipped ", safe(card["query_id"]), "."))
                return True
            label = self._label_for(card, key)
            if label is not None and self._send(card["query_id"], label):
                return True
            self.console.print("label> ", end="")

    def _draw(self, card: JSON, page: int) -> int:
        """Print the card with one page of its measurements; how many pages there are."""
        panel, pages = fitted_card(self.console, card, page)
        self.console.print(panel)
        self.console.print("label> ", end="")
        return pages

    def _label_for(self, card: JSON, key: str) -> str | None:
        classes: list[str] = card["classes"]
        if key.isdigit() and 1 <= int(key) <= min(len(classes), 9):
            return classes[int(key) - 1]
        if key in classes:  # a whole name, from a pipe
            return key
        if key.lower() in ("n", "new"):
            self.console.print("\nnew class (Enter to send, empty to cancel)> ", end="")
            name = self._read(card, self.keys.poll_line)
            return name or None
        self.console.print(f"\nPress 1–{min(len(classes), 9)}, n (new class), s (skip), "
                           "] [ (more measurements) or q.")
        return None

    def _read(self, card: JSON, poll: object) -> str | None:
        """What ``poll`` returns, or None once the card is no longer this terminal's."""
        assert callable(poll)
        while True:
            got: str | None = poll(_TICK_S)
            if got is not None:
                return got
            why = self.service.refusal(card["query_id"], self.holder)
            if why is not None:
                self.console.print(Text.assemble("\n", safe(why, "yellow"), ": next card."))
                return None

    def _send(self, query_id: str, label: str) -> bool:
        """True when this card is done with (labelled, or refused for good)."""
        try:
            sent = self.service.answer(query_id, label, self.holder, self.labeler)
        except LabelRefused as refused:
            self.console.print(Text.assemble(("\nRefused: ", "red"), safe(refused.reason)))
            return True
        except BrokerUnavailable as error:
            self.console.print(Text.assemble(("\nNot sent: ", "red"), safe(error)))
            return False
        self.console.print(Text.assemble(("\n✓ ", "green"), safe(sent.query_id), ": labelled ",
                                         safe(sent.label)))
        return True
