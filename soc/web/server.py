"""The ASGI application: the API under ``/api/v1`` with its OpenAPI description.

:func:`create_app` takes the root :class:`soc.app.App` (the service layer of one store); every
request then works through ``root.acting_as(caller)`` (:mod:`soc.web.deps`). Errors are RFC 9457
problem documents (:mod:`soc.web.problems`); every answer carries the security headers of
:mod:`soc.web.headers`. The interactive documentation is at ``/api/docs`` (served from this
machine: :mod:`soc.web.apidocs`) and the description at ``/api/openapi.json``, both needing no
credentials (they hold no data). In the description every operation names what it needs in
``x-soc-permission``: a permission (``alerts:read``), ``authenticated`` (any caller) or
``public``; :func:`route_table` lists them (``soc serve --routes``; docs/api.md).

Serving it (uvicorn, TLS, the bind rules) is :mod:`soc.web.serve`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from soc.app import App
from soc.identity.sessions import cookie_name
from soc.web import problems
from soc.web.api import ROUTERS
from soc.web.apidocs import DOCS_PATH, install_docs
from soc.web.console import mount_console
from soc.web.console.render import error_page
from soc.web.deps import CSRF_HEADER, caller, permission_of
from soc.web.headers import SecurityHeaders
from soc.web.taxii import TAXII_PREFIX, create_taxii_app

__all__ = ["API_PREFIX", "AUTHENTICATED", "ApiRoute", "OPENAPI_PATH", "PUBLIC", "PUBLIC_PATHS", "api_routes", "create_app",
           "route_access", "route_table"]

API_PREFIX = "/api/v1"
OPENAPI_PATH = "/api/openapi.json"
#: what answers without credentials
PUBLIC_PATHS = frozenset({f"{API_PREFIX}/health", f"{API_PREFIX}/auth/login", OPENAPI_PATH, DOCS_PATH,
                          f"{DOCS_PATH}/init.js", DOCS_PATH + "/assets/{name}"})
#: :func:`route_access` of a route any authenticated caller may use, and of a public one
AUTHENTICATED, PUBLIC = "authenticated", "public"
DESCRIPTION = (
    "The provincial SOC's service layer over HTTP: events, alerts, incidents, playbooks, reports, agencies, "
    "users and the audit trail. Every answer is limited to the caller's agencies; every change is audited "
    "under the caller's name. Errors are RFC 9457 problem documents.\n\n"
    "Authenticate with an API token (`Authorization: Bearer TOKEN`, `soc tokens create`) or the console's "
    f"session cookie (`POST {API_PREFIX}/auth/login`; changes then need the `{CSRF_HEADER}` header). Each "
    "operation's `x-soc-permission` says what it needs. Guide: docs/api.md.")


#: no id of this system is longer (the search engine's limit on document ids, in UTF-8 bytes)
MAX_SEGMENT_BYTES = 512


class SegmentLimit:
    """Answers 404 to a path with a segment longer than any id can be, before any route runs
    (an overlong id would otherwise reach the store as an oversized request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if any(len(part.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES for part in path.split("/")):
            answer = problems.problem(404, f"no such object (an id is at most {MAX_SEGMENT_BYTES} bytes)")
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SocApi(FastAPI):
    """FastAPI with :class:`~soc.web.headers.SecurityHeaders` outside everything (error
    answers included) and :class:`SegmentLimit` before the routes."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(SegmentLimit(super().build_middleware_stack()), tls=bool(self.state.tls))


def create_app(root: App, *, tls: bool = False) -> FastAPI:
    """The web application over ``root``. ``tls``: served over HTTPS (Secure, ``__Host-``
    session cookies; HSTS)."""
    app = SocApi(title="SOC API", version="1", description=DESCRIPTION,
                 docs_url=None, redoc_url=None, openapi_url=OPENAPI_PATH)
    app.state.root = root
    app.state.tls = tls
    problems.install(app, pages=error_page)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    install_docs(app, OPENAPI_PATH)
    if root.settings.taxii.enabled:  # TAXII 2.1 (docs/taxii.md): its own answers and errors
        app.mount(TAXII_PREFIX, create_taxii_app(root))
    mount_console(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app, cookie_name(root.settings.auth.session_cookie, tls=tls))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class ApiRoute(Protocol):
    """A route of the API as the application serves it (its path with the prefixes, its
    dependencies with the routers'): FastAPI's ``RouteContext``, or an ``APIRoute`` before
    FastAPI 0.16x."""

    path: str
    path_format: str
    methods: set[str] | None
    dependant: Dependant
    summary: str | None
    name: str


def api_routes(app: FastAPI) -> list[ApiRoute]:
    """Every route of the API (under ``/api/``; what the route-enumeration test walks)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied into app.routes
        found: list[Any] = [r for r in app.routes if isinstance(r, APIRoute)]
    else:
        found = [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]
    return [r for r in found if (r.path or "").startswith("/api/")]


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def route_access(route: ApiRoute) -> str:
    """What a route needs: the permission its :func:`~soc.web.deps.need` dependency checks (the
    first, when several), :data:`AUTHENTICATED` when it needs only a caller, else
    :data:`PUBLIC`."""
    calls = [d.call for d in _dependencies(route.dependant)]
    for call in calls:
        permission = permission_of(call) if call is not None else None
        if permission:
            return permission
    return AUTHENTICATED if caller in calls else PUBLIC


def route_table(app: FastAPI) -> str:
    """The API's routes with what each needs, as a Markdown table (docs/api.md)."""
    rows = sorted((route.path, method, route_access(route), route.summary or route.name)
                  for route in api_routes(app) for method in sorted(route.methods or ()))
    lines = ["| method | path | needs | what |", "|---|---|---|---|"]
    lines += [f"| {method} | `{path}` | `{access}` | {summary} |" for path, method, access, summary in rows]
    return "\n".join(lines) + "\n"


def describe(app: FastAPI, session_cookie: str) -> dict[str, Any]:
    """The OpenAPI description: FastAPI's, with the two ways to authenticate and each
    operation's ``x-soc-permission``."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {})["securitySchemes"] = {
        "token": {"type": "http", "scheme": "bearer", "description": "an API token (`soc tokens create`)"},
        "session": {"type": "apiKey", "in": "cookie", "name": session_cookie,
                    "description": f"the console's session (`POST {API_PREFIX}/auth/login`); every change also "
                                   f"needs the session's CSRF token in `{CSRF_HEADER}`"},
    }
    paths = schema.get("paths", {})
    for route in api_routes(app):
        access = route_access(route)
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            operation["x-soc-permission"] = access
            operation["security"] = [] if access == PUBLIC else [{"token": []}, {"session": []}]
    return schema
