"""Who is calling, and what they may do: the dependencies every route declares.

**Authentication.** An ``Authorization: Bearer TOKEN`` header (API tokens, ``soc tokens
create``) or the session cookie of the console (``POST /api/v1/auth/login``). Nothing else is
accepted, and nothing is anonymous except the login itself, the health check and the docs.

**CSRF.** A request authenticated by the cookie that changes something (any method but GET,
HEAD, OPTIONS) must carry the session's CSRF token in ``X-CSRF-Token``: a page of another site
can make the browser send the cookie, never read the token. (The cookie is also
``SameSite=Strict``.) Token requests need no CSRF token: a browser never adds one by itself.

**Authorization.** :func:`need` (``dependencies=[need("alerts:read")]``) refuses with 403 what
the caller's roles (narrowed by a token's scopes) do not grant. The agency scope is not checked
here but inside every query: :attr:`Caller.services` is the service layer acting as the caller.

A session whose password must be changed (the first admin's one-time password, a password set
by an administrator) may only read ``/auth/me``, change the password and log out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from soc.access import Forbidden, Principal
from soc.app import App
from soc.identity.sessions import Session, check_csrf, cookie_name
from soc.web.problems import Unauthenticated

__all__ = ["CSRF_HEADER", "Caller", "caller", "need", "session_cookie"]

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: paths a session that must change its password may still use
PASSWORD_CHANGE_PATHS = ("/api/v1/auth/me", "/api/v1/auth/password", "/api/v1/auth/logout")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request: who, through which session (None for a token),
    and the service layer acting as them (scoped to their agencies, audited under their name)."""

    principal: Principal
    services: App
    session: Session | None = None


def root_of(request: Request) -> App:
    """The application's service layer (set by :func:`soc.web.server.create_app`)."""
    return request.app.state.root


def session_cookie(request: Request) -> str:
    """The session cookie's name (``__Host-`` prefixed when served over TLS)."""
    return cookie_name(root_of(request).settings.auth.session_cookie, tls=request.app.state.tls)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def caller(request: Request) -> Caller:
    """The authenticated caller, or 401."""
    root = root_of(request)
    header = request.headers.get("authorization", "")
    session: Session | None = None
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("use 'Authorization: Bearer TOKEN' (an API token) or log in")
        principal = root.identity.resolve_token(secret.strip())
        if principal is None:
            raise Unauthenticated("the token is unknown, expired or revoked")
    else:
        session = root.identity.session(request.cookies.get(session_cookie(request)))
        if session is None:
            raise Unauthenticated("log in first (POST /api/v1/auth/login) or send an API token")
        if request.method not in SAFE_METHODS and not check_csrf(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header (the session's CSRF token)")
        if session.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
            raise Forbidden("change your password first (POST /api/v1/auth/password)")
        principal = session.principal
    services = root.acting_as(principal, ip=client_ip(request), user_agent=request.headers.get("user-agent"))
    return Caller(principal, services, session)


def need(permission: str) -> Any:
    """A route dependency: the caller, when they hold ``permission``; else 403. The permission
    is kept on the dependency (``.permission``) so tests and docs can list every route's."""

    def check(found: Caller = Depends(caller)) -> Caller:  # noqa: B008 -- FastAPI's way
        found.principal.require(permission)
        return found

    check.permission = permission  # type: ignore[attr-defined]
    check.__name__ = f"need_{permission.replace(':', '_')}"
    return Depends(check)


def permission_of(dependency: Callable[..., Any]) -> str | None:
    """The permission a :func:`need` dependency checks (None for other dependencies)."""
    return getattr(dependency, "permission", None)
