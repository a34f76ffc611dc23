"""Run the desk: the Kafka service plus the web app under uvicorn until SIGINT/SIGTERM.

Any number of browsers may share one desk, and any number of desks and terminals may
share one set of topics when they share a claim topic (the default).
"""

from __future__ import annotations

import signal
import socket
from types import FrameType

import uvicorn

from consumers.oracle.desk.app import create_app
from consumers.oracle.desk.service import DeskService
from consumers.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until stopped; prints the address once listening (port 0 picks a free one)."""
    desk = settings.desk
    listener = _listen(desk.host, desk.port)
    service = DeskService(settings)
    try:
        service.start()
        bound_host, bound_port = listener.getsockname()[:2]
        print(f"stream-al desk: http://{bound_host}:{bound_port}/ (Ctrl-C to stop)", flush=True)
        config = uvicorn.Config(create_app(service, desk.labeler), log_level="warning",
                                timeout_graceful_shutdown=2, lifespan="off")
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, _already_stopping)
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        service.stop()
        listener.close()


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    """uvicorn shuts down on SIGINT/SIGTERM, then re-raises the signal to the handler it
    found; this one lets ``serve`` go on to stop the reader and producer and exit 0."""


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    return listener
