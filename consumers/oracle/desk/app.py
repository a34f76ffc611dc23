"""The desk's web app (Starlette): one page, a JSON state, live updates by Server-Sent Events.

Who is labelling: the desk's configured name (``--labeler``), else a name typed once on
the login page and kept in a cookie. There are no passwords: this is for a floor LAN,
and the name only signs labels. Each browser gets its own *holder* token (a cookie), so
two people behind one configured name still never get the same card.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
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

from consumers.oracle.desk.service import DeskService
from stream_al.desk_queue import LabelRefused
from stream_al.errors import BrokerUnavailable

STATIC: Final = Path(__file__).parent / "static"
HOLDER_COOKIE: Final = "stream_al_desk_holder"
LABELER_COOKIE: Final = "stream_al_desk_labeler"
_NAME: Final = re.compile(r"[\w.@+-][\w .@+-]{0,63}")
#: Seconds between live-update checks, and between full re-sends (claims lapse silently).
_TICK_S: Final = 0.2
_REFRESH_S: Final = 10.0


class DeskRoutes:
    """The HTTP handlers, bound to one desk service."""

    def __init__(self, service: DeskService, labeler: str | None) -> None:
        self.service = service
        self.labeler = labeler

    async def index(self, request: Request) -> Response:
        if self._labeler(request) is None:
            return RedirectResponse("/login", status_code=303)
        return self._with_holder(request, FileResponse(STATIC / "index.html"))

    async def login_page(self, request: Request) -> Response:
        return FileResponse(STATIC / "login.html")

    async def login(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        name = (form.get("name") or [""])[0].strip()
        if not _NAME.fullmatch(name):
            return RedirectResponse("/login?bad=1", status_code=303)
        response = self._with_holder(request, RedirectResponse("/", status_code=303))
        _set_cookie(response, LABELER_COOKIE, quote(name))
        return response

    async def logout(self, request: Request) -> Response:
        holder = request.cookies.get(HOLDER_COOKIE)
        if holder:
            self.service.release(holder)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(LABELER_COOKIE)
        response.delete_cookie(HOLDER_COOKIE)
        return response

    async def state(self, request: Request) -> Response:
        who = self._identity(request)
        if who is None:
            return _error("log in first", 401)
        return JSONResponse(await run_in_threadpool(self.service.view, *who))

    async def events(self, request: Request) -> Response:
        who = self._identity(request)
        if who is None:
            return _error("log in first", 401)
        return StreamingResponse(self._stream(request, *who), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def label(self, request: Request) -> Response:
        who, body = self._identity(request), await _json(request)
        if who is None or body is None:
            return _error("log in first" if who is None else "expected a JSON object", 400)
        query_id, label = str(body.get("query_id", "")), str(body.get("label", ""))
        try:
            sent = await run_in_threadpool(self.service.answer, query_id, label, *who)
        except LabelRefused as refused:
            return _error(refused.reason, 409)
        except BrokerUnavailable as error:
            return _error(str(error), 503)
        return JSONResponse({"ok": True, "query_id": sent.query_id, "label": sent.label,
                             "labeler": sent.labeler})

    async def skip(self, request: Request) -> Response:
        who, body = self._identity(request), await _json(request)
        if who is None or body is None:
            return _error("log in first" if who is None else "expected a JSON object", 400)
        self.service.skip(str(body.get("query_id", "")), who[0])
        return JSONResponse({"ok": True})

    async def _stream(self, request: Request, holder: str, labeler: str) -> AsyncIterator[str]:
        state, seen, sent_at = self.service.state, -1, 0.0
        while not await request.is_disconnected():
            if state.version != seen or time.monotonic() - sent_at > _REFRESH_S:
                seen, sent_at = state.version, time.monotonic()
                # In a thread: a claim sent to Kafka may wait for topic metadata.
                view = await run_in_threadpool(self.service.view, holder, labeler)
                yield f"data: {json.dumps(view, separators=(',', ':'))}\n\n"
            await asyncio.sleep(_TICK_S)

    def _labeler(self, request: Request) -> str | None:
        if self.labeler is not None:
            return self.labeler
        cookie = request.cookies.get(LABELER_COOKIE)
        name = unquote(cookie) if cookie else None
        return name if name and _NAME.fullmatch(name) else None

    def _identity(self, request: Request) -> tuple[str, str] | None:
        labeler, holder = self._labeler(request), request.cookies.get(HOLDER_COOKIE)
        return (holder, labeler) if labeler and holder else None

    def _with_holder(self, request: Request, response: Response) -> Response:
        if not request.cookies.get(HOLDER_COOKIE):
            _set_cookie(response, HOLDER_COOKIE, secrets.token_urlsafe(16))
        return response


def create_app(service: DeskService, labeler: str | None = None) -> Starlette:
    """The desk app; ``labeler`` fixes the name on every label (no login page)."""
    routes = DeskRoutes(service, labeler)
    return Starlette(routes=[
        Route("/", routes.index),
        Route("/login", routes.login_page, methods=["GET"]),
        Route("/login", routes.login, methods=["POST"]),
        Route("/logout", routes.logout, methods=["POST"]),
        Route("/api/state", routes.state),
        Route("/api/events", routes.events),
        Route("/api/label", routes.label, methods=["POST"]),
        Route("/api/skip", routes.skip, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])


def _set_cookie(response: Response, name: str, value: str) -> None:
    # SameSite=Strict: another site's page cannot post labels in a labeller's name.
    response.set_cookie(name, value, max_age=30 * 86_400, httponly=True, samesite="strict")


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)
