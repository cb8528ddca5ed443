"""Logging in and out of the console, who am I, changing one's password.

``POST /auth/login`` answers the same for a wrong name, a wrong password and a disabled
account (401), and 429 with ``Retry-After`` while the name or the address is locked out. A
successful login always starts a new session (a session id planted before the login is never
adopted) and sets the cookie (HttpOnly, SameSite=Strict, Secure over TLS); the answer carries
the CSRF token to send in ``X-CSRF-Token`` with every change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from soc.identity.model import PasswordRejected
from soc.identity.sessions import COOKIE_ATTRIBUTES, Session
from soc.web.deps import Caller, caller, client_ip, root_of, session_cookie
from soc.web.problems import TooManyAttempts, Unauthenticated

router = APIRouter(prefix="/auth", tags=["auth"])


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChange(BaseModel):
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=1, max_length=1024)


def _me(session: Session | None, principal: Any) -> dict[str, Any]:
    return {"name": principal.name, "label": principal.label, "kind": principal.kind, "roles": sorted(principal.roles),
            "agency": principal.agency, "permissions": sorted(principal.permissions),
            **({"csrf_token": session.csrf, "expires_at": session.expires_at.isoformat(),
                "must_change_password": session.must_change_password} if session else {})}


def _set_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(session_cookie(request), session.id, secure=request.app.state.tls, **COOKIE_ATTRIBUTES)


@router.post("/login", summary="Log in (console session)")
def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    result, session = root_of(request).identity.login(body.name, body.password, client_ip(request))
    if result.reason in ("locked", "throttled"):
        raise TooManyAttempts(result.message, max(1, result.wait_seconds))
    if session is None or result.principal is None:
        raise Unauthenticated(result.message)
    _set_cookie(request, response, session)
    return _me(session, result.principal)


@router.post("/logout", summary="End the session")
def logout(request: Request, response: Response, who: Caller = Depends(caller)) -> dict[str, bool]:  # noqa: B008
    if who.session is not None:
        root_of(request).identity.logout(who.session.id)
    # the same attributes as when set: a __Host- cookie is only replaced by a Secure one
    response.delete_cookie(session_cookie(request), secure=request.app.state.tls, **COOKIE_ATTRIBUTES)
    return {"logged_out": who.session is not None}


@router.get("/me", summary="Who am I, with my roles, agency and permissions")
def me(who: Caller = Depends(caller)) -> dict[str, Any]:  # noqa: B008
    return _me(who.session, who.principal)


@router.post("/password", summary="Change my password (ends my other sessions)")
def password(body: PasswordChange, request: Request, response: Response,
             who: Caller = Depends(caller)) -> dict[str, Any]:  # noqa: B008
    if who.session is None:
        raise Unauthenticated("log in to the console to change your password (a token cannot)")
    try:
        result, session = root_of(request).identity.change_password(who.session, body.current, body.new,
                                                                    client_ip(request))
    except PasswordRejected as error:
        raise ValueError(str(error)) from error
    if result.reason in ("locked", "throttled"):
        raise TooManyAttempts(result.message, max(1, result.wait_seconds))
    if session is None:
        raise Unauthenticated(result.message)
    _set_cookie(request, response, session)
    return _me(session, session.principal)
