"""The analyst console: server-rendered pages (Jinja2), Vietnamese by default with an English
switch, its own static files (no CDN: provincial networks are often air-gapped), a
Content-Security-Policy without inline scripts. Every page goes through the same service layer
as the API, acting as the logged-in user (:meth:`soc.app.App.acting_as`): the agency scope and
the audit trail apply to every page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from soc.web.console import pages, security

__all__ = ["STATIC", "mount_console"]

STATIC = Path(__file__).resolve().parent / "static"


def mount_console(app: FastAPI) -> None:
    """Add the console's pages, its static files and its page policy to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in pages.ROUTERS:
        app.include_router(router)

    @app.exception_handler(security.LoginRequired)
    async def _login(request: Request, error: security.LoginRequired) -> Response:
        return security.login_redirect(error)

    @app.middleware("http")
    async def _policy(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        if not request.url.path.startswith("/api/"):
            response.headers.setdefault("Content-Security-Policy", security.CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")  # Origin stays on own forms
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
