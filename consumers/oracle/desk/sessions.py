"""Desk sessions: a cookie signed with HMAC-SHA256 carrying who, which holder, until when.

The desk keeps no session table: a cookie whose signature checks out under the desk's
key and whose expiry has not passed *is* the session, so a restart logs nobody out and
several desks sharing one key (``desk.session_secret``) share their sessions. Changing
the key logs everyone out.

The holder is a random id per session (claims are made in its name, so two people, or
two browsers of one person, never get one card). The CSRF token is an HMAC of the
holder under the same key: bound to the session, and useless to anyone who lacks the
key even though holders travel on the claim topic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from consumers.oracle.desk.private_files import write_private
from consumers.settings import Settings
from stream_al.errors import ConfigError

MIN_SECRET: Final = 32
_VERSION: Final = "v1"


@dataclass(frozen=True)
class Session:
    user: str
    holder: str
    expires: int  # Unix seconds
    stamp: str = ""  # what the identity vouched for at login (accounts: the hash's print)


class SessionSigner:
    """Issues and checks session cookies and their CSRF tokens."""

    def __init__(self, secret: bytes, lifetime_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET:
            raise ConfigError(f"desk.session_secret must be at least {MIN_SECRET} characters")
        self._secret, self.lifetime_s, self._clock = secret, lifetime_s, clock

    def issue(self, user: str, stamp: str = "") -> tuple[Session, str]:
        """A new session for ``user`` (with a new holder) and its cookie value."""
        session = Session(user, f"web-{secrets.token_hex(8)}",
                          int(self._clock() + self.lifetime_s), stamp)
        payload = json.dumps({"u": session.user, "h": session.holder, "e": session.expires,
                              "s": session.stamp}, separators=(",", ":")).encode()
        body = f"{_VERSION}.{_b64(payload)}"
        return session, f"{body}.{self._sign('session', body)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session in ``cookie``; None if absent, forged, tampered with or expired."""
        version, _, rest = (cookie or "").partition(".")
        body, _, signature = rest.rpartition(".")
        if version != _VERSION or not _same(signature,
                                            self._sign("session", f"{version}.{body}")):
            return None
        session = _decode(body)
        return session if session is not None and self.alive(session) else None

    def alive(self, session: Session) -> bool:
        """Not yet expired (a live update stream asks this as it goes)."""
        return session.expires > self._clock()

    def csrf_token(self, session: Session) -> str:
        return self._sign("csrf", session.holder)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and _same(token, self.csrf_token(session))

    def _sign(self, purpose: str, text: str) -> str:
        # The purpose is signed too, so a CSRF token can never pass as a session signature.
        message = f"{purpose}|{text}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())


def session_secret(settings: Settings) -> bytes:
    """``desk.session_secret``, else the key in the state directory, made on first use."""
    if settings.desk.session_secret is not None:
        return settings.desk.session_secret.get_secret_value().encode()
    path = secret_path(settings)
    write_private(path, secrets.token_urlsafe(MIN_SECRET) + "\n", replace=False)
    return _read_secret(path)


def secret_path(settings: Settings) -> Path:
    return settings.state_dir / "desk-session-secret"


def _read_secret(path: Path) -> bytes:
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET:
        raise ConfigError(f"{path} holds no usable key (under {MIN_SECRET} characters); "
                          "delete it and a new one is made (everyone logs in again)")
    return secret


def _decode(body: str) -> Session | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return Session(str(data["u"]), str(data["h"]), int(data["e"]), str(data["s"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None  # signed by us but not ours: only if the key leaked; refuse anyway


def _same(given: str, expected: str) -> bool:
    # Compared as bytes: compare_digest refuses non-ASCII str, and cookies and headers
    # come from whoever sends them.
    return hmac.compare_digest(given.encode(), expected.encode())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
