"""The ASGI application: the API under ``/api/v1`` with its OpenAPI description.

:func:`create_app` takes the root :class:`soc.app.App` (the service layer of one store); every
request then works through ``root.acting_as(caller)`` (:mod:`soc.web.deps`). Errors are RFC 9457
problem documents (:mod:`soc.web.problems`). The interactive documentation is at ``/api/docs``
and the description at ``/api/openapi.json``, both needing no credentials (they hold no data).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from soc.app import App
from soc.web import problems
from soc.web.api import ROUTERS

__all__ = ["API_PREFIX", "PUBLIC_PATHS", "create_app"]

API_PREFIX = "/api/v1"
#: what answers without credentials
PUBLIC_PATHS = frozenset({f"{API_PREFIX}/health", f"{API_PREFIX}/auth/login", "/api/openapi.json", "/api/docs"})


def create_app(root: App, *, tls: bool = False) -> FastAPI:
    """The web application over ``root``. ``tls``: served over HTTPS (Secure, ``__Host-``
    session cookies)."""
    app = FastAPI(title="SOC API", version="1",
                  description="The provincial SOC's service layer over HTTP: events, alerts, incidents, "
                              "playbooks, reports, agencies, users and the audit trail. Every answer is "
                              "limited to the caller's agencies; every change is audited under the caller's "
                              "name. Errors are RFC 9457 problem documents.",
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.root = root
    app.state.tls = tls
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    return app


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the API (what the route-enumeration test walks)."""
    return [r for r in app.routes if isinstance(r, APIRoute)]
