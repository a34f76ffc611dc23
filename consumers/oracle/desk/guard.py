"""What a request must show before the desk acts on it: that a page of the desk itself
sent it (not another site, nor another port of the same host), as JSON.

SameSite=Strict cookies stop other *sites*, but every port of one host is the same
site, so a page served on :9000 could post labels to the desk on :8765 with the
labeller's cookies. Four checks close that, each enough against a different sender:

* ``Sec-Fetch-Site`` (set by every current browser, not forgeable by a page) must be
  ``same-origin`` or ``none`` (typed or bookmarked), never ``same-site``/``cross-site``;
* ``Origin``, when sent, must be the desk's own (``desk.public_origin`` behind a proxy);
* a state change must be ``application/json``, which no form and no "simple" cross-origin
  request can send without a CORS preflight the desk never answers;
* a state change must carry the session's CSRF token (``X-CSRF-Token``), which only the
  desk's own pages can read (``/api/session``).
"""

from __future__ import annotations

from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request

CSRF_HEADER: Final = "X-CSRF-Token"
_OWN_SITES: Final = frozenset(("same-origin", "none"))


class SameOrigin:
    """Checks that a request comes from the desk's own pages; raises HTTPException."""

    def __init__(self, public_origin: str | None = None) -> None:
        self.public_origin = public_origin.lower() if public_origin else None

    def check(self, request: Request) -> None:
        site = request.headers.get("sec-fetch-site")
        if site is not None and site.lower() not in _OWN_SITES:
            raise HTTPException(403, f"refused: a {site} request (only the desk's own pages "
                                     "may do this)")
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() != self.expected(request):
            raise HTTPException(403, f"refused: a request from {origin}, not from the desk")

    def expected(self, request: Request) -> str:
        """The origin of the desk's pages: configured, or where this request was sent."""
        if self.public_origin:
            return self.public_origin
        return f"{request.url.scheme}://{request.headers.get('host', '')}".lower()


def require_json(request: Request) -> None:
    """A state change must be JSON: forms and text/plain are what cross-origin pages can
    send without asking first."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "send application/json")
