"""The daemon's one HTTP port: /metrics, /healthz (loop alive), /readyz (can work)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from consumers.daemon.http import HealthServer


@pytest.fixture
def state() -> dict[str, tuple[bool, list[str]]]:
    return {"ready": (True, []), "alive": (True, [])}


@pytest.fixture
def server(state: dict[str, tuple[bool, list[str]]]) -> Iterator[HealthServer]:
    registry = CollectorRegistry()
    Counter("stream_al_probe", "a probe", registry=registry).inc()
    running = HealthServer("127.0.0.1", 0, registry, lambda: state["ready"],
                           lambda: state["alive"]).start()
    yield running
    running.stop()


def get(server: HealthServer, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}") as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_metrics_are_served(server: HealthServer) -> None:
    status, body = get(server, "/metrics")
    assert status == 200 and b"stream_al_probe_total 1.0" in body


def test_readyz_and_healthz_say_why_not(server: HealthServer,
                                        state: dict[str, tuple[bool, list[str]]]) -> None:
    assert get(server, "/readyz")[0] == 200 and get(server, "/healthz")[0] == 200
    state["ready"] = (False, ["not connected to Kafka"])
    state["alive"] = (False, ["the main loop has not turned for 61 s"])
    status, body = get(server, "/readyz")
    assert status == 503 and json.loads(body)["reasons"] == ["not connected to Kafka"]
    status, body = get(server, "/healthz")
    assert status == 503 and "61 s" in json.loads(body)["reasons"][0]


def test_unknown_paths_say_what_exists(server: HealthServer) -> None:
    status, body = get(server, "/nope")
    assert status == 404 and b"/metrics" in body


def test_the_daemon_is_not_alive_once_its_loop_stalls(tmp_path: Path) -> None:
    import time

    from consumers.daemon.loop import Daemon
    from consumers.settings import Settings

    daemon = Daemon(Settings(state_dir=tmp_path))
    assert daemon.liveness() == (True, [])
    daemon._last_step = time.monotonic() - 61
    alive, reasons = daemon.liveness()
    assert not alive and "has not turned for 61 s" in reasons[0]


def test_slow_clients_hold_a_bounded_number_of_threads_and_time_out() -> None:
    import socket
    import threading
    import time

    server = HealthServer("127.0.0.1", 0, CollectorRegistry(), lambda: (True, []),
                          workers=4, request_timeout_s=0.5).start()
    try:
        before = threading.active_count()
        slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
        for client in slow:
            client.sendall(b"GET /metr")  # and never the rest of the request
        time.sleep(0.2)
        assert threading.active_count() - before <= 4
        time.sleep(1.0)  # past the request timeout: the slots are free again
        assert get(server, "/healthz")[0] == 200
        for client in slow:
            client.close()
    finally:
        server.stop()
