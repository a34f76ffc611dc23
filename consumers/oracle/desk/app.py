"""The desk's web app (Starlette): one page, a JSON state, live updates by Server-Sent Events.

Who is labelling comes from ``DeskAuth`` (accounts with a login page, one configured
name, or a proxy's header: auth.py) and is carried by a signed session cookie; the name
on a label is always the session's, never anything a request body says. Every request
that reads or changes the queue must come from the desk's own pages (guard.py), and
every response keeps other pages from framing or scripting the desk (headers.py).

Claims are the engineer's (``DeskService.holder_for`` the session's name), shared by all
their tabs. An answer's reply carries the view after it (with the next card), and every
view its version, so the page shows the next card at once and never lets an older view
replace a newer one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from consumers.oracle.desk.accounts import Accounts
from consumers.oracle.desk.auth import SESSION_COOKIE, DeskAuth, PasswordLogin
from consumers.oracle.desk.guard import CSRF_HEADER, require_json
from consumers.oracle.desk.headers import SecurityHeaders
from consumers.oracle.desk.service import DeskService
from consumers.oracle.desk.sessions import Session
from stream_al.desk_queue import LabelRefused
from stream_al.errors import BrokerUnavailable

STATIC: Final = Path(__file__).parent / "static"
#: Seconds between live-update checks, and between full re-sends (claims lapse silently).
_TICK_S: Final = 0.2
_REFRESH_S: Final = 10.0
#: A failed login takes at least this long, so its timing tells nothing and guessing is slow.
FAILED_LOGIN_S: Final = 0.5
#: Password checks at once: argon2 takes 64 MiB each, so a burst of logins queues instead.
_CHECKS_AT_ONCE: Final = 2
#: The largest JSON body taken (a label is a few hundred bytes).
_MAX_BODY: Final = 64 * 1024


class DeskRoutes:
    """The HTTP handlers, bound to one desk service and its authentication."""

    def __init__(self, service: DeskService, auth: DeskAuth) -> None:
        self.service, self.auth = service, auth
        self._checking = anyio.CapacityLimiter(_CHECKS_AT_ONCE)

    async def index(self, request: Request) -> Response:
        if self._session(request) is not None:
            return FileResponse(STATIC / "index.html")
        name = self.auth.identity.visitor(request)
        if name is not None:
            return self._start_session(FileResponse(STATIC / "index.html"), name)
        if not self.auth.identity.logs_in:
            return _error("the proxy in front of the desk did not say who you are", 401)
        if SESSION_COOKIE not in request.cookies:
            return RedirectResponse("/login", status_code=303)
        # Forged, tampered with, expired or of a removed account: refused, log in again.
        return self._end_session(FileResponse(STATIC / "login.html", status_code=401))

    async def login_page(self, request: Request) -> Response:
        if not self.auth.identity.logs_in:
            return RedirectResponse("/", status_code=303)
        return FileResponse(STATIC / "login.html")

    async def login(self, request: Request) -> Response:
        accounts = self._accounts()
        self.auth.same_origin.check(request)
        require_json(request)
        body = await _json_object(request)
        name, password = str(body.get("name", "")), str(body.get("password", ""))
        if not await self._password_ok(accounts, name, password):
            raise HTTPException(401, "wrong name or password")
        self._release_previous(request, name)
        return self._start_session(JSONResponse({"ok": True, "labeler": name}), name)

    async def logout(self, request: Request) -> Response:
        session = self._caller(request, write=True)
        self.service.release(self._holder(session))
        next_page = "/login" if self.auth.identity.logs_in else "/"
        return self._end_session(JSONResponse({"ok": True, "next": next_page}))

    async def session_info(self, request: Request) -> Response:
        session = self._caller(request)
        return JSONResponse({"labeler": session.user, "logs_in": self.auth.identity.logs_in,
                             "csrf": self.auth.sessions.csrf_token(session)})

    async def state(self, request: Request) -> Response:
        session = self._caller(request)
        return JSONResponse(await run_in_threadpool(self.service.view, self._holder(session),
                                                    session.user))

    async def events(self, request: Request) -> Response:
        session = self._caller(request)
        return StreamingResponse(self._stream(request, session), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def label(self, request: Request) -> Response:
        session = self._caller(request, write=True)
        body = await _json_object(request)
        query_id, label = str(body.get("query_id", "")), str(body.get("label", ""))
        holder = self._holder(session)
        try:
            sent = await run_in_threadpool(self.service.answer, query_id, label, holder,
                                           session.user)
        except LabelRefused as refused:
            return _error(refused.reason, 409)
        except BrokerUnavailable as error:
            return _error(str(error), 503)
        view = await run_in_threadpool(self.service.next_view, holder, session.user)
        return JSONResponse({"ok": True, "query_id": sent.query_id, "label": sent.label,
                             "labeler": sent.labeler, "view": view})

    async def skip(self, request: Request) -> Response:
        session = self._caller(request, write=True)
        body = await _json_object(request)
        holder = self._holder(session)
        self.service.skip(str(body.get("query_id", "")), holder)
        view = await run_in_threadpool(self.service.next_view, holder, session.user)
        return JSONResponse({"ok": True, "view": view})

    async def take(self, request: Request) -> Response:
        """Open the card of a clicked queue row instead of the current one."""
        session = self._caller(request, write=True)
        body = await _json_object(request)
        holder = self._holder(session)
        try:
            self.service.take(str(body.get("query_id", "")), holder, session.user)
        except LabelRefused as refused:
            return _error(refused.reason, 409)
        view = await run_in_threadpool(self.service.next_view, holder, session.user)
        return JSONResponse({"ok": True, "view": view})

    async def _stream(self, request: Request, session: Session) -> AsyncIterator[str]:
        state, seen, sent_at = self.service.state, -1, 0.0
        # Ends when the session does; the browser's reconnect is then refused (401).
        while not await request.is_disconnected() and self._still_valid(request, session):
            if state.version != seen or time.monotonic() - sent_at > _REFRESH_S:
                seen, sent_at = state.version, time.monotonic()
                # In a thread: a claim sent to Kafka may wait for topic metadata.
                view = await run_in_threadpool(self.service.view, self._holder(session),
                                               session.user)
                yield f"data: {json.dumps(view, separators=(',', ':'))}\n\n"
            await asyncio.sleep(_TICK_S)

    def _caller(self, request: Request, write: bool = False) -> Session:
        """The session behind a request from the desk's own page; raises HTTPException."""
        self.auth.same_origin.check(request)
        if write:
            require_json(request)
        session = self._session(request)
        if session is None:
            raise HTTPException(401, "log in first (or again: the session has ended)")
        token = request.headers.get(CSRF_HEADER)
        if write and not self.auth.sessions.csrf_ok(session, token):
            raise HTTPException(403, f"refused: no valid {CSRF_HEADER} (reload the page)")
        return session

    def _holder(self, session: Session) -> str:
        return self.service.holder_for(session.user)

    def _session(self, request: Request) -> Session | None:
        session = self.auth.sessions.read(request.cookies.get(SESSION_COOKIE))
        return session if session and self.auth.identity.accepts(request, session) else None

    def _still_valid(self, request: Request, session: Session) -> bool:
        return self.auth.sessions.alive(session) and self.auth.identity.accepts(request, session)

    def _accounts(self) -> Accounts:
        if not isinstance(self.auth.identity, PasswordLogin):
            raise HTTPException(404, "this desk has no accounts to log in to")
        return self.auth.identity.accounts

    async def _password_ok(self, accounts: Accounts, name: str, password: str) -> bool:
        started = time.monotonic()
        right = await anyio.to_thread.run_sync(accounts.verify, name, password,
                                               limiter=self._checking)
        if not right:
            await asyncio.sleep(max(0.0, FAILED_LOGIN_S - (time.monotonic() - started)))
        return right

    def _release_previous(self, request: Request, name: str) -> None:
        # Someone else logs in on this browser: the card the previous person held goes
        # back in line (the same person logging in again keeps theirs).
        previous = self.auth.sessions.read(request.cookies.get(SESSION_COOKIE))
        if previous is not None and previous.user != name:
            self.service.release(self._holder(previous))

    def _start_session(self, response: Response, name: str) -> Response:
        _, cookie = self.auth.sessions.issue(name, self.auth.identity.stamp(name))
        # HttpOnly: no script reads it. SameSite=Strict: no other site sends it.
        response.set_cookie(SESSION_COOKIE, cookie, max_age=int(self.auth.sessions.lifetime_s),
                            path="/", httponly=True, samesite="strict",
                            secure=self.auth.secure_cookies)
        return response

    def _end_session(self, response: Response) -> Response:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self.auth.secure_cookies)
        return response


def create_app(service: DeskService, auth: DeskAuth) -> Starlette:
    """The desk app: who labels and how sessions are signed come with ``auth``."""
    routes = DeskRoutes(service, auth)
    return Starlette(routes=[
        Route("/", routes.index),
        Route("/login", routes.login_page, methods=["GET"]),
        Route("/login", routes.login, methods=["POST"]),
        Route("/logout", routes.logout, methods=["POST"]),
        Route("/api/session", routes.session_info),
        Route("/api/state", routes.state),
        Route("/api/events", routes.events),
        Route("/api/label", routes.label, methods=["POST"]),
        Route("/api/skip", routes.skip, methods=["POST"]),
        Route("/api/take", routes.take, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: _refused})


async def _json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; raises HTTPException (400, or 413 when too large)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_BODY:
            raise HTTPException(413, "request too large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object")
    return body


async def _refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    response = _error(error.detail, error.status_code)
    response.headers.update(error.headers or {})  # e.g. Allow on a 405
    return response


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)
