"""When the soak disrupts the daemon: kill -9s and broker stops, never on top of each
other, none so late that its recovery falls outside the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventKind = Literal["kill", "broker"]


@dataclass(frozen=True)
class Event:
    at: float  # seconds since the traffic started
    kind: EventKind


def plan(seconds: float, kill_every: float | None, broker_every: float | None,
         quiet_tail_s: float, spacing_s: float) -> list[Event]:
    """Every ``kill_every`` s a kill, every ``broker_every`` s a broker stop, at least
    ``spacing_s`` apart (a later one is pushed back), none after ``seconds - quiet_tail_s``.

    >>> [(e.at, e.kind) for e in plan(300, 100, 150, 60, 30)]
    [(100, 'kill'), (150, 'broker'), (200, 'kill')]
    >>> [(e.at, e.kind) for e in plan(250, 100, 100, 0, 30)]
    [(100, 'broker'), (130, 'kill'), (200, 'broker'), (230, 'kill')]
    """
    wanted = [*_every(seconds, broker_every, "broker"), *_every(seconds, kill_every, "kill")]
    # Broker stops first at a tie: they are the rarer and longer disruption.
    wanted.sort(key=lambda e: (e.at, e.kind != "broker"))
    events: list[Event] = []
    for event in wanted:
        at = max(event.at, events[-1].at + spacing_s) if events else event.at
        if at <= seconds - quiet_tail_s:
            events.append(Event(at, event.kind))
    return events


def _every(seconds: float, every: float | None, kind: EventKind) -> list[Event]:
    if not every:
        return []
    count = int(seconds // every)
    return [Event(every * n, kind) for n in range(1, count + 1)]
