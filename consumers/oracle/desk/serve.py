"""Run the desk: the Kafka service plus the web app under uvicorn until SIGINT/SIGTERM.

Any number of browsers may share one desk, and any number of desks and terminals may
share one set of topics when they share a claim topic (the default). With
``desk.tls_certfile`` and ``desk.tls_keyfile`` it serves HTTPS (and marks cookies Secure).
"""

from __future__ import annotations

import signal
import socket
import sys
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from consumers.oracle.desk.app import create_app
from consumers.oracle.desk.auth import DeskAuth, PasswordLogin, desk_auth
from consumers.oracle.desk.service import DeskService
from consumers.settings import DeskSettings, Settings


def serve(settings: Settings) -> None:
    """Serve until stopped; prints the address once listening (port 0 picks a free one)."""
    desk = settings.desk
    listener = _listen(desk.host, desk.port)
    service = DeskService(settings)
    try:
        service.start()
        auth = desk_auth(settings)
        config = uvicorn_config(create_app(service, auth), desk)
        config.load()  # a bad certificate or key fails here, before the address is printed
        _warn_if_nobody_can_log_in(auth)
        bound_host, bound_port = listener.getsockname()[:2]
        scheme = "https" if desk.tls_certfile else "http"
        print(f"stream-al desk: {scheme}://{bound_host}:{bound_port}/ (Ctrl-C to stop)",
              flush=True)
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, _already_stopping)
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        service.stop()
        listener.close()


def uvicorn_config(app: ASGIApp, desk: DeskSettings) -> uvicorn.Config:
    """uvicorn's settings for the desk; HTTPS when the certificate and key are set (the
    settings allow both or neither)."""
    return uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2,
                          lifespan="off", ssl_certfile=desk.tls_certfile,
                          ssl_keyfile=desk.tls_keyfile)


def _warn_if_nobody_can_log_in(auth: DeskAuth) -> None:
    identity = auth.identity
    if isinstance(identity, PasswordLogin) and not identity.accounts.names():
        print(f"stream-al desk: no accounts in {identity.accounts.path} yet; add one with "
              "`stream-al desk users add NAME` (the desk reads it without a restart)",
              file=sys.stderr, flush=True)


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
