"""One HTTP port for Prometheus and the orchestrator: /metrics, /healthz, /readyz.

Bounded: at most ``workers`` requests are served at once (more are closed at once, and a
scraper retries), and a client that sends its request slowly is dropped after
``REQUEST_TIMEOUT_S``: 300 half-sent requests once held 300 threads.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream_al.errors import ConfigError

#: Returns (ready, reasons it is not); also the shape of a liveness check.
Readiness = Callable[[], tuple[bool, list[str]]]
#: A scrape is one small request; a client slower than this is not Prometheus.
REQUEST_TIMEOUT_S = 5.0
#: Prometheus, an orchestrator and a person with curl, with room to spare.
WORKERS = 8


def always_alive() -> tuple[bool, list[str]]:
    return True, []


class HealthServer:
    """Serves in a daemon thread; ``port`` is the bound port (useful when asked for 0)."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 readiness: Readiness, liveness: Readiness = always_alive,
                 workers: int = WORKERS, request_timeout_s: float = REQUEST_TIMEOUT_S,
                 port_hint: str = "choose another port (0 picks a free one)") -> None:
        handler = _handler(registry, readiness, liveness, request_timeout_s)
        try:
            self._server = _BoundedServer((host, port), handler, workers)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(f"{host}:{port} is already in use (another stream-al?); "
                              f"{port_hint}") from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="http",
                                        daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _BoundedServer(HTTPServer):
    """One thread per request, at most ``workers`` of them."""

    #: Connections the kernel holds for accept; a burst is refused by us, at once,
    #: rather than left to SYN retries of seconds.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 workers: int) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(workers)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # every worker busy: refuse, do not queue
            return
        threading.Thread(target=self._serve, args=(request, client_address),
                         name="http-request", daemon=True).start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one bad client must not end the server
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up or sent garbage is not worth a traceback on stderr."""


def _handler(registry: CollectorRegistry, readiness: Readiness, liveness: Readiness,
             request_timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = request_timeout_s  # applied to the socket before the request is read

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                check = liveness if path == "/healthz" else readiness
                ok, reasons = check()
                body = json.dumps({"ok": ok, "reasons": reasons}).encode() + b"\n"
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"try /metrics, /healthz or /readyz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every few seconds would drown the daemon's own log."""

    return Handler
