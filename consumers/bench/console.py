"""The console every long command writes its progress and tables to."""

from __future__ import annotations

from rich.console import Console


def wide_console() -> Console:
    """A stderr console; when not a terminal (CI logs, pipes) wide enough that result
    tables are not cut to rich's 80-column default."""
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=160)
