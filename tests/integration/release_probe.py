"""Run by test_connection_release.py in an interpreter of its own: open a Connection,
leave sends pending across a broker stop, drop it; repeat; then report, as one JSON
line, which of the dropped clients are still referenced and which of their threads
still run.

Its own interpreter because kafka-python leaves the sockets of connection attempts
refused during the outage to the garbage collector: under pytest each is a
ResourceWarning (an error in this suite) raised whenever the collector next runs, in
whichever test is running then. The broker is the test's: this script asks for each
stop and start on stdout and waits for "ok" on stdin.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import weakref
from pathlib import Path

from consumers.daemon.connection import Connection
from consumers.settings import Settings
from stream_al.bus import Outgoing

#: Only bounds a broken run: a thread kafka-python has been told to stop ends at once.
THREAD_JOIN_S = 30.0
FLUSH_S = 1.0


def ask(what: str) -> None:
    print(what, flush=True)
    if sys.stdin.readline().strip() != "ok":
        raise SystemExit(f"the test did not {what} the broker")


def main(settings_path: str, topic: str, outages: int, sends: int) -> None:
    settings = Settings.model_validate_json(Path(settings_path).read_text(encoding="utf-8"))
    threads_before = set(threading.enumerate())
    dropped: list[weakref.ref[object]] = []
    pending: list[int] = []
    for outage in range(outages):
        if outage:
            ask("start")
        connection = Connection.open(settings, {}, listener=None)
        connection.sink.send(Outgoing(topic, b"k", b"before"))
        connection.sink.flush()  # delivered: the producer now knows the topic's leader
        delivered_first = connection.sink.take_failures() == []
        ask("stop")
        for n in range(sends):  # queued for the known leader, never acknowledged
            connection.sink.send(Outgoing(topic, b"k", b"%d" % n))
        connection.sink.flush(FLUSH_S)
        failures = connection.sink.take_failures()
        # The case under test: the connection is dropped with sends still pending.
        pending.append(sum(f.timed_out for f in failures) if delivered_first else -1)
        dropped += [weakref.ref(client) for client in
                    (connection, connection.consumer, connection.logs.consumer,
                     connection.sink, connection.sink._producer)]  # noqa: SLF001
        connection.close()
        del connection, failures

    left = [thread for thread in threading.enumerate() if thread not in threads_before]
    for thread in left:
        thread.join(THREAD_JOIN_S)
    gc.collect()
    print(json.dumps({
        "pending_at_drop": pending,
        "threads_running": sorted(t.name for t in left if t.is_alive()),
        "alive": [type(ref()).__name__ for ref in dropped if ref() is not None],
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
