"""The security headers of every answer, added by the outermost layer of the application (so
error pages, 404s and the 500 of a bug get them too).

==============================  ================================================================
``X-Content-Type-Options``      ``nosniff`` -- a JSON answer is never run as a script or a page
``Referrer-Policy``             ``no-referrer`` -- URLs (ids, filters) do not leak to other sites
                                (console pages: ``same-origin``, so that their forms keep an
                                ``Origin`` to check, still never sent to other sites)
``X-Frame-Options``             ``DENY`` (and ``frame-ancestors 'none'`` in the CSP): no framing,
                                no click-jacking
``Content-Security-Policy``     API answers: ``default-src 'none'`` (they are data, not pages);
                                the API docs page sets its own ('self' only); console pages
                                theirs
``Cache-Control``               ``no-store`` on every ``/api/`` answer but the docs' static
                                files: answers carry agency data and must not stay in caches
``Cross-Origin-Opener-Policy``  ``same-origin``; ``Cross-Origin-Resource-Policy``:
                                ``same-origin``
``Strict-Transport-Security``   over HTTPS only: ``max-age=31536000`` (browsers then refuse plain
                                HTTP to this host for a year)
==============================  ================================================================

A header the answer already has (a page's own CSP, the docs files' caching) is left as it is.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["API_CSP", "HSTS", "SecurityHeaders", "security_headers"]

#: the policy of API answers (data, never a page)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=31536000"
_ALWAYS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
           ("X-Frame-Options", "DENY"), ("Cross-Origin-Opener-Policy", "same-origin"),
           ("Cross-Origin-Resource-Policy", "same-origin"))


def security_headers(path: str, *, tls: bool) -> list[tuple[str, str]]:
    """The headers an answer to ``path`` gets (unless it has them already)."""
    headers = list(_ALWAYS)
    if path.startswith("/api/"):
        headers.append(("Cache-Control", "no-store"))
    headers.append(("Content-Security-Policy", API_CSP))  # pages (docs, console) set their own first
    if tls:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


class SecurityHeaders:
    """ASGI middleware adding :func:`security_headers` to every HTTP answer."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app, self.tls = app, tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = security_headers(scope.get("path", ""), tls=self.tls)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted:
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
