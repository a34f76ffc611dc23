"""Who is labelling at the desk, in one of three ways chosen by the settings:

* ``PasswordLogin`` (the default): accounts in ``desk.users_file``; a person logs in with
  a password and the signed session cookie carries the name.
* ``FixedLabeler`` (``desk.labeler``): one trusted operator, no login; every label is
  signed with that name, whoever opens the page.
* ``ProxyUser`` (``desk.trusted_user_header``): a reverse proxy authenticated the person
  and names them in a header; trusted only because the desk must be reachable through
  that proxy alone.

In every way each browser still gets a signed session (its holder and CSRF token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from starlette.requests import Request

from consumers.oracle.desk.accounts import NAME, Accounts, users_path
from consumers.oracle.desk.guard import SameOrigin
from consumers.oracle.desk.sessions import Session, SessionSigner, session_secret
from consumers.settings import Settings

SESSION_COOKIE: Final = "stream_al_desk_session"


class Identity(Protocol):
    #: True when people log in with a password (there is a login page).
    logs_in: bool

    def visitor(self, request: Request) -> str | None:
        """The name a visit gets a session for without logging in; None: it must log in."""

    def stamp(self, name: str) -> str:
        """What a new session of ``name`` carries for ``accepts`` to check later."""

    def accepts(self, request: Request, session: Session) -> bool:
        """Whether a validly signed session still stands for this request."""


class PasswordLogin:
    logs_in = True

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def visitor(self, request: Request) -> str | None:
        return None

    def stamp(self, name: str) -> str:
        return self.accounts.stamp(name) or ""

    def accepts(self, request: Request, session: Session) -> bool:
        # Removed, or given a new password since this login: the session has ended.
        return self.accounts.stamp(session.user) == session.stamp


class FixedLabeler:
    logs_in = False

    def __init__(self, name: str) -> None:
        self.name = name

    def visitor(self, request: Request) -> str | None:
        return self.name

    def stamp(self, name: str) -> str:
        return ""

    def accepts(self, request: Request, session: Session) -> bool:
        return session.user == self.name


class ProxyUser:
    logs_in = False

    def __init__(self, header: str) -> None:
        self.header = header

    def visitor(self, request: Request) -> str | None:
        name = request.headers.get(self.header, "").strip()
        return name if NAME.fullmatch(name) else None

    def stamp(self, name: str) -> str:
        return ""

    def accepts(self, request: Request, session: Session) -> bool:
        # Bound to the proxy's user: another person in the same browser gets a new session.
        return session.user == self.visitor(request)


@dataclass(frozen=True)
class DeskAuth:
    """Everything the app needs to know who is asking and whether to act on it."""

    identity: Identity
    sessions: SessionSigner
    same_origin: SameOrigin
    secure_cookies: bool = False


def desk_auth(settings: Settings) -> DeskAuth:
    """The desk's authentication from its settings (makes the session key on first use)."""
    desk = settings.desk
    signer = SessionSigner(session_secret(settings), desk.session_hours * 3600)
    # Secure cookies whenever browsers reach the desk over HTTPS, here or at a proxy.
    https = desk.tls_certfile is not None or (desk.public_origin or "").startswith("https:")
    return DeskAuth(identity(settings), signer, SameOrigin(desk.public_origin),
                    secure_cookies=https)


def identity(settings: Settings) -> Identity:
    desk = settings.desk
    if desk.labeler is not None:
        return FixedLabeler(desk.labeler)
    if desk.trusted_user_header is not None:
        return ProxyUser(desk.trusted_user_header)
    accounts = Accounts(users_path(settings))
    accounts.check()
    return PasswordLogin(accounts)
