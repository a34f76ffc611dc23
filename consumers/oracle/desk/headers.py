"""Headers on every desk response that tell the browser to keep other pages out.

``frame-ancestors 'none'`` matters most: another port of the same host is the same site,
so without it a page there could frame the desk and steer a labeller's clicks. The rest
keeps scripts to the desk's own files (no inline script runs, whatever a record holds)
and answers out of shared caches (the session's CSRF token is in one of them).
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_POLICY: Final = "; ".join((
    "default-src 'self'", "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",  # desk.js sizes the probability bars inline
    "img-src 'self' data:", "connect-src 'self'", "object-src 'none'", "base-uri 'none'",
    "form-action 'self'", "frame-ancestors 'none'",
))
_EVERY_RESPONSE: Final = {
    "Content-Security-Policy": _POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware: the headers above, and no caching of anything but static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.update(_EVERY_RESPONSE)
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
