"""A stop that a signal handler may ask for safely.

``threading.Event.set()`` takes a plain (non-reentrant) lock. A handler runs on the main
thread between two bytecodes, so if SIGTERM lands while the main thread is inside that
same event's ``wait()`` and holds the lock for an instant, ``set()`` in the handler waits
for a lock its own thread holds: the process hangs for good, ignoring every later signal
(the daemon did, under load, when a stop came just as it began a back-off). A handler here
only stores the signal number, which takes no lock; waits on the main thread look at it
every :data:`SIGNAL_POLL_S`.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

#: How soon a wait notices a signal (a stop from another thread wakes it at once).
SIGNAL_POLL_S = 0.1


class StopRequest(threading.Event):
    """A ``threading.Event`` (pass it wherever one is expected) that :meth:`on_signal`
    may also set from a signal handler."""

    def __init__(self) -> None:
        super().__init__()
        #: The signal that asked for the stop, if one did.
        self.signalled: int | None = None

    def on_signal(self, signum: int, _frame: FrameType | None = None) -> None:
        self.signalled = signum  # an attribute store: no lock, safe in a handler

    def is_set(self) -> bool:
        return self.signalled is not None or super().is_set()

    def clear(self) -> None:
        self.signalled = None
        super().clear()

    def wait(self, timeout: float | None = None) -> bool:
        """True once a stop was asked for; False after ``timeout`` seconds without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            slice_s = SIGNAL_POLL_S
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                slice_s = min(slice_s, left)
            super().wait(slice_s)
        return True

    def install(self, *signums: int) -> None:
        """Route ``signums`` (default SIGINT and SIGTERM) here."""
        for signum in signums or (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.on_signal)
