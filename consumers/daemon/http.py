"""One HTTP port for Prometheus and the orchestrator: /metrics, /healthz, /readyz."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

#: Returns (ready, reasons it is not); also the shape of a liveness check.
Readiness = Callable[[], tuple[bool, list[str]]]


def always_alive() -> tuple[bool, list[str]]:
    return True, []


class HealthServer:
    """Serves in a daemon thread; ``port`` is the bound port (useful when asked for 0)."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 readiness: Readiness, liveness: Readiness = always_alive) -> None:
        handler = _handler(registry, readiness, liveness)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="http",
                                        daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(registry: CollectorRegistry, readiness: Readiness,
             liveness: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
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
