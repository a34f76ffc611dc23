"""A stop a signal handler asks for: it takes no lock, and every wait sees it."""

from __future__ import annotations

import signal
import threading
from typing import Any

from consumers.stopping import StopRequest


class _TakenLock:
    """Stands in for the event's condition: entering it is what a handler must not do
    (the interrupted main thread may hold it, and it is not reentrant)."""

    def __enter__(self) -> None:
        raise AssertionError("the signal handler took the event's lock")

    def __exit__(self, *_: Any) -> None:
        return None


def test_a_signal_is_recorded_without_the_events_lock() -> None:
    stop = StopRequest()
    stop._cond = _TakenLock()  # type: ignore[attr-defined]  # threading.Event's own lock
    stop.on_signal(signal.SIGTERM)
    assert stop.is_set() and stop.signalled == signal.SIGTERM


def test_every_wait_returns_on_a_signal_or_a_set_and_times_out_otherwise() -> None:
    by_signal, by_thread, never = StopRequest(), StopRequest(), StopRequest()
    threading.Timer(0.2, by_signal.on_signal, (signal.SIGINT,)).start()
    threading.Timer(0.2, by_thread.set).start()
    assert by_signal.wait(30) and by_signal.signalled == signal.SIGINT
    assert by_thread.wait(30) and by_thread.signalled is None
    assert never.wait(0.05) is False and not never.is_set()
    by_signal.clear()
    assert not by_signal.is_set() and by_signal.signalled is None


def test_a_real_sigterm_stops_a_main_thread_that_keeps_entering_waits() -> None:
    stop, previous = StopRequest(), signal.getsignal(signal.SIGTERM)
    stop.install(signal.SIGTERM)
    try:
        threading.Timer(0.3, signal.raise_signal, (signal.SIGTERM,)).start()
        waits = 0
        while not stop.wait(0.001):  # the back-off loop the daemon hung in
            waits += 1
            assert waits < 1_000_000, "the SIGTERM was never seen"
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stop.signalled == signal.SIGTERM
